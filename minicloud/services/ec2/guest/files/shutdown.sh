#!/bin/sh
# poweroff / halt / shutdown / reboot inside a minicloud instance: PID 1 (boot.sh) ends the
# instance when told by a signal: SIGUSR2 powers off (halt as well), SIGHUP reboots.
# Usage: shutdown.sh NAME [ARGS...], NAME being the command that was run.
name=$1
[ $# -gt 0 ] && shift
case $name in
    reboot) signal=HUP ;;
    shutdown)
        signal=USR2
        for arg in "$@"; do
            case $arg in
                -r|--reboot) signal=HUP ;;
                -c) echo "shutdown: nothing scheduled to cancel" >&2; exit 1 ;;
            esac
        done ;;
    poweroff|halt) signal=USR2 ;;
    *) echo "usage: shutdown.sh poweroff|halt|reboot|shutdown [options]" >&2; exit 2 ;;
esac
for arg in "$@"; do
    case $arg in
        --help) echo "usage: $name [options]: ends this instance (minicloud)"; exit 0 ;;
    esac
done
if [ "$(id -u)" != 0 ]; then
    echo "$name: must be superuser." >&2
    exit 1
fi
echo "$name: the system is going down now" >&2
kill -s "$signal" 1
