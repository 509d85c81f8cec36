#!/bin/sh
# minicloud instance init: PID 1 of an EC2 instance container (POSIX sh: dash and busybox ash).
# At every boot: hostname, the seed's public keys for the default user, missing SSH host keys,
# cloud-init-like console lines (with the host key fingerprints), sshd. At the first boot of an
# instance: its user data, when it is a "#!" script. Then it stays, reaping orphans and restarting
# sshd if it dies, until a signal says how to end:
#   SIGTERM, SIGINT, SIGQUIT (a stop)       -> processes stopped, exit 0
#   SIGUSR1/SIGUSR2 (halt/poweroff inside)  -> processes stopped, exit 130 (power off, as reboot(2)
#   SIGHUP (reboot inside)                  -> processes stopped, exit 129  reports in a pid namespace)
# The seed (read-only) is at /run/minicloud/seed, this script and the shutdown shim at
# /run/minicloud/guest.

SEED=/run/minicloud/seed
GUEST=/run/minicloud/guest
CLOUD=/var/lib/cloud
VERSION="22.4.2-minicloud"
HOST_KEY_TYPES="ecdsa ed25519"
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 022
cd /

action=""
# The traps end the instance themselves: a signal arriving just before `wait` is never lost.
trap 'end stop' TERM INT QUIT  # QUIT: an image's StopSignal (nginx's) still stops it
trap 'end poweroff' USR1 USR2
trap 'end reboot' HUP

say() { printf '%s\n' "$*"; }

up_seconds() {  # since this container's PID 1 started (its start time is field 22 of its stat)
    awk 'NR == 1 { sub(/.*\) /, ""); split($0, f, " "); start = f[20] }
         NR == 2 { printf "%.2f", $1 - start / 100 }' /proc/1/stat /proc/uptime 2>/dev/null || printf '0.00'
}

stage() { say "Cloud-init v. $VERSION running '$1' at $(date -R). Up $(up_seconds) seconds."; }

seed_value() { [ -f "$SEED/$1" ] && head -n 1 "$SEED/$1"; }

INSTANCE_ID=$(seed_value instance-id)
HOSTNAME_WANTED=$(seed_value hostname)
INSTANCE_DIR="$CLOUD/instances/${INSTANCE_ID:-unknown}"

new_instance() {  # first boot of this instance id in this root filesystem (or of an image's copy)
    previous=$(cat "$CLOUD/data/instance-id" 2>/dev/null)
    [ "$previous" != "$INSTANCE_ID" ] || return 1
    # A root filesystem that was another instance's (an image made from it) gets its own host keys.
    [ -z "$previous" ] || rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub
    mkdir -p "$CLOUD/data" "$INSTANCE_DIR/sem" "$INSTANCE_DIR/scripts"
    printf '%s\n' "$INSTANCE_ID" > "$CLOUD/data/instance-id"
    return 0
}

set_hostname() {
    [ -n "$HOSTNAME_WANTED" ] || return 0
    [ "$(hostname 2>/dev/null)" = "$HOSTNAME_WANTED" ] && return 0
    hostname "$HOSTNAME_WANTED" 2>/dev/null || say "minicloud-init: cannot set the hostname to $HOSTNAME_WANTED"
}

default_user() {
    if grep -q '^admin:' /etc/passwd 2>/dev/null; then echo admin; else echo root; fi
}

install_keys() {
    [ -s "$SEED/public-keys" ] || return 0
    user=$(default_user)
    home=$(awk -F: -v u="$user" '$1 == u { print $6 }' /etc/passwd)
    [ -n "$home" ] || home=/root
    group=$(awk -F: -v u="$user" '$1 == u { print $4 }' /etc/passwd)
    keys="$home/.ssh/authorized_keys"
    mkdir -p "$home/.ssh"
    touch "$keys"
    while IFS= read -r key || [ -n "$key" ]; do
        [ -n "$key" ] || continue
        grep -qxF -- "$key" "$keys" || printf '%s\n' "$key" >> "$keys"
    done < "$SEED/public-keys"
    chmod 700 "$home/.ssh"
    chmod 600 "$keys"
    chown "$user:${group:-0}" "$home/.ssh" "$keys"
}

host_keys() {
    command -v ssh-keygen >/dev/null 2>&1 || return 0
    for type in $HOST_KEY_TYPES; do
        file="/etc/ssh/ssh_host_${type}_key"
        [ -s "$file" ] && [ -s "$file.pub" ] && continue
        rm -f "$file" "$file.pub"
        ssh-keygen -q -t "$type" -N '' -C "root@${HOSTNAME_WANTED:-localhost}" -f "$file" >/dev/null 2>&1 ||
            say "minicloud-init: generating the $type host key failed"
    done
}

print_host_keys() {  # as cloud-init's keys-to-console module prints them
    set -- /etc/ssh/ssh_host_*_key.pub
    [ -e "$1" ] || return 0
    say "ec2: "
    say "ec2: #############################################################"
    say "ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----"
    for pub in "$@"; do
        line=$(ssh-keygen -l -f "$pub" 2>/dev/null) && say "ec2: $line"
    done
    say "ec2: -----END SSH HOST KEY FINGERPRINTS-----"
    say "ec2: #############################################################"
    say "-----BEGIN SSH HOST KEY KEYS-----"
    for pub in "$@"; do
        cut -d' ' -f1-2 "$pub"
    done
    say "-----END SSH HOST KEY KEYS-----"
}

print_network() {
    command -v ip >/dev/null 2>&1 || return 0
    ip -o -4 addr show 2>/dev/null | while read -r _ name _ address _; do
        [ "$name" = lo ] || say "ci-info: | $name | True | $address |"
    done
}

sshd_pid=""
keepalive_pid=""
start_main() {  # sshd, or a sleeper when the image has none, so that PID 1 has a child to wait for
    if [ -x /usr/sbin/sshd ]; then
        mkdir -p /run/sshd
        chmod 755 /run/sshd
        /usr/sbin/sshd -D -e &
        sshd_pid=$!
    else
        sleep 2147483647 &
        keepalive_pid=$!
    fi
}

user_data() {  # the first boot's user data, in the background; its output goes to the console
    data="$SEED/user-data"
    [ -n "$INSTANCE_ID" ] && [ -s "$data" ] || return 1
    marker="$INSTANCE_DIR/sem/config_scripts_user"
    [ -e "$marker" ] && return 1
    mkdir -p "$INSTANCE_DIR/sem" "$INSTANCE_DIR/scripts"
    date -R > "$marker"
    first=$(head -c 2 "$data")
    if [ "$first" != "#!" ]; then
        case $(head -n 1 "$data") in
            "#cloud-config"*) say "minicloud-init: #cloud-config user data is not supported (only scripts starting with #!); ignored" ;;
            *) say "minicloud-init: user data is not a script starting with #!; ignored" ;;
        esac
        return 1
    fi
    script="$INSTANCE_DIR/scripts/part-001"
    mkdir -p /var/log
    cp "$data" "$script"
    chmod 700 "$script"
    (
        status="$INSTANCE_DIR/scripts/status"
        { HOME=/root "$script"; echo $? > "$status"; } 2>&1 | tee -a /var/log/cloud-init-output.log
        code=$(cat "$status" 2>/dev/null)
        [ "${code:-0}" = 0 ] || say "minicloud-init: the user data script exited with status $code"
        finished
    ) < /dev/null &
    return 0
}

finished() {
    say "Cloud-init v. $VERSION finished at $(date -R). Datasource DataSourceNoCloud [seed=$SEED].  Up $(up_seconds) seconds"
}

stop_everything() {
    say "minicloud-init: $1: stopping all processes"
    kill -TERM -1 2>/dev/null
    tries=0
    while kill -0 -1 2>/dev/null && [ "$tries" -lt 50 ]; do  # up to 5 s; the sleep reaps the exited
        sleep 0.1
        tries=$((tries + 1))
    done
    kill -KILL -1 2>/dev/null
    sleep 0.05
}

end() {
    [ -z "$action" ] || return 0  # already ending
    action=$1
    case $action in
        stop) stop_everything "stop"; say "minicloud-init: stopped"; exit 0 ;;
        poweroff) stop_everything "power off"; say "minicloud-init: powered off"; exit 130 ;;
        reboot) stop_everything "reboot"; say "minicloud-init: rebooting"; exit 129 ;;
    esac
}

install_shutdown_commands() {  # poweroff/halt/reboot/shutdown that tell this PID 1
    mkdir -p /usr/local/sbin
    for name in poweroff halt reboot shutdown; do
        [ -e "/usr/local/sbin/$name" ] && continue
        printf '#!/bin/sh\nexec /bin/sh %s/shutdown.sh %s "$@"\n' "$GUEST" "$name" > "/usr/local/sbin/$name"
        chmod 755 "/usr/local/sbin/$name"
    done
}

stage init
new_instance || true
set_hostname
install_shutdown_commands 2>/dev/null
print_network
install_keys
host_keys
stage modules:config
print_host_keys  # before sshd starts, so that its log lines do not split the block
start_main
stage modules:final
user_data || finished

failures=0
while :; do
    if [ -n "$sshd_pid" ]; then wait "$sshd_pid"; else wait "$keepalive_pid"; fi
    kill -0 "${sshd_pid:-$keepalive_pid}" 2>/dev/null && continue  # woken by a signal that is not ours
    # the main child ended by itself: start it again (slower after repeated failures)
    failures=$((failures + 1))
    say "minicloud-init: ${sshd_pid:+sshd}${keepalive_pid:+keepalive} exited; restarting"
    if [ "$failures" -gt 5 ]; then sleep 10; else sleep 1; fi
    sshd_pid=""
    keepalive_pid=""
    start_main
done
