"""Entrypoint scripts of the database images: on the first start they initialise the data directory
from the environment the official images read, then they run the server in the foreground."""

from __future__ import annotations

POSTGRES = r"""#!/bin/bash
# minicloud's postgres entrypoint: on the first start, initdb into $PGDATA as POSTGRES_USER
# (default postgres) with POSTGRES_PASSWORD, create POSTGRES_DB, run /docker-entrypoint-initdb.d/*;
# then run the server (listen_addresses='*', port 5432) as the postgres user.
set -Eeo pipefail

file_env() {  # VAR or VAR_FILE, as the official image reads them
    local var="$1" file_var="${1}_FILE" default="${2:-}"
    if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
        echo >&2 "error: both $var and $file_var are set (but are exclusive)"; exit 1
    fi
    local value="$default"
    if [ -n "${!var:-}" ]; then value="${!var}"; elif [ -n "${!file_var:-}" ]; then value="$(< "${!file_var}")"; fi
    export "$var"="$value"
    unset "$file_var"
}

if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
fi

if [ "$1" = 'postgres' ] && [ "$(id -u)" = '0' ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    chmod 3777 /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
fi

if [ "$1" = 'postgres' ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    file_env POSTGRES_INITDB_ARGS
    auth="${POSTGRES_HOST_AUTH_METHOD:-}"
    if [ -z "$POSTGRES_PASSWORD" ] && [ "$auth" != 'trust' ]; then
        echo >&2 'Error: Database is uninitialized and superuser password is not specified.'
        echo >&2 '       You must specify POSTGRES_PASSWORD to a non-empty value for the'
        echo >&2 '       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".'
        echo >&2 '       Or set POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without a password.'
        exit 1
    fi
    : "${auth:=scram-sha-256}"
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    eval 'initdb --username="$POSTGRES_USER" --pwfile="$pwfile" '"$POSTGRES_INITDB_ARGS"
    rm -f "$pwfile"
    printf '\nhost all all all %s\n' "$auth" >> "$PGDATA/pg_hba.conf"

    PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start
    export PGPASSWORD="$POSTGRES_PASSWORD"
    psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
    if [ "$POSTGRES_DB" != 'postgres' ]; then
        echo 'CREATE DATABASE :"db" ;' | "${psql[@]}" --dbname postgres --set db="$POSTGRES_DB"
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh) echo "running $f"; . "$f" ;;
            *.sql) echo "running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
            *.sql.gz) echo "running $f"; gunzip -c "$f" | "${psql[@]}" --dbname "$POSTGRES_DB" ;;
            *) [ -e "$f" ] && echo "ignoring $f" ;;
        esac
    done
    unset PGPASSWORD
    pg_ctl -D "$PGDATA" -m fast -w stop
    echo 'PostgreSQL init process complete; ready for start up.'
fi

exec "$@"
"""

MARIADB = r"""#!/bin/bash
# minicloud's mariadb entrypoint: on the first start, initialise /var/lib/mysql with the root
# password from MARIADB_ROOT_PASSWORD (or MYSQL_ROOT_PASSWORD; MARIADB_ALLOW_EMPTY_ROOT_PASSWORD
# and MARIADB_RANDOM_ROOT_PASSWORD as the official image has them), create MARIADB_DATABASE and
# MARIADB_USER/MARIADB_PASSWORD (MYSQL_* too), run /docker-entrypoint-initdb.d/*; then run the
# server on 0.0.0.0:3306 as the mysql user.
set -Eeo pipefail

env_of() {  # the first non-empty of MARIADB_<name> and MYSQL_<name>
    local a="MARIADB_$1" b="MYSQL_$1"
    printf '%s' "${!a:-${!b:-}}"
}
sql_string() {  # a single-quoted SQL literal
    local s="${1//\\/\\\\}"
    printf "'%s'" "${s//\'/\\\'}"
}

if [ "${1:0:1}" = '-' ]; then
    set -- mariadbd "$@"
fi

if [ "$1" = 'mariadbd' ] || [ "$1" = 'mysqld' ]; then
    datadir=/var/lib/mysql
    mkdir -p "$datadir" /run/mysqld
    if [ "$(id -u)" = '0' ]; then chown mysql:mysql "$datadir" /run/mysqld; fi
    if [ ! -d "$datadir/mysql" ]; then
        root_password="$(env_of ROOT_PASSWORD)"
        allow_empty="${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:-${MYSQL_ALLOW_EMPTY_PASSWORD:-}}"
        random="${MARIADB_RANDOM_ROOT_PASSWORD:-${MYSQL_RANDOM_ROOT_PASSWORD:-}}"
        if [ -z "$root_password" ] && [ -z "$allow_empty" ] && [ -z "$random" ]; then
            echo >&2 'error: database is uninitialized and password option is not specified'
            echo >&2 '  You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD'
            echo >&2 '  and MARIADB_RANDOM_ROOT_PASSWORD'
            exit 1
        fi
        if [ -n "$random" ]; then
            root_password="$(tr -dc 'A-Za-z0-9' < /dev/urandom | head -c 32)"
            echo "GENERATED ROOT PASSWORD: $root_password"
        fi
        echo 'Initializing database files'
        mariadb-install-db --user=mysql --datadir="$datadir" --auth-root-authentication-method=normal \
            --skip-test-db --skip-name-resolve > /dev/null
        socket=/run/mysqld/init.sock
        mariadbd --user=mysql --datadir="$datadir" --skip-networking --socket="$socket" &
        pid=$!
        for _ in $(seq 300); do
            mariadb-admin --socket="$socket" -uroot ping > /dev/null 2>&1 && break
            kill -0 "$pid" 2>/dev/null || { echo >&2 'error: the temporary server exited'; exit 1; }
            sleep 0.1
        done
        client=(mariadb --protocol=socket --socket="$socket" -uroot)
        pw="$(sql_string "$root_password")"
        {
            echo "SET @@SESSION.SQL_LOG_BIN=0;"
            echo "DELETE FROM mysql.global_priv WHERE User='' OR (User='root' AND Host NOT IN ('localhost'));"
            echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $pw;"
            if [ "${MARIADB_ROOT_HOST:-%}" != 'localhost' ]; then
                host="$(sql_string "${MARIADB_ROOT_HOST:-%}")"
                echo "CREATE USER 'root'@$host IDENTIFIED BY $pw;"
                echo "GRANT ALL ON *.* TO 'root'@$host WITH GRANT OPTION;"
            fi
            database="$(env_of DATABASE)"
            if [ -n "$database" ]; then
                echo "CREATE DATABASE IF NOT EXISTS \`${database//\`/\`\`}\`;"
            fi
            user="$(env_of USER)"
            if [ -n "$user" ]; then
                echo "CREATE USER $(sql_string "$user")@'%' IDENTIFIED BY $(sql_string "$(env_of PASSWORD)");"
                if [ -n "$database" ]; then
                    echo "GRANT ALL ON \`${database//\`/\`\`}\`.* TO $(sql_string "$user")@'%';"
                fi
            fi
            echo "FLUSH PRIVILEGES;"
        } | "${client[@]}"
        export MYSQL_PWD="$root_password"
        for f in /docker-entrypoint-initdb.d/*; do
            case "$f" in
                *.sh) echo "running $f"; . "$f" ;;
                *.sql) echo "running $f"; "${client[@]}" ${database:+"$database"} < "$f" ;;
                *.sql.gz) echo "running $f"; gunzip -c "$f" | "${client[@]}" ${database:+"$database"} ;;
                *) [ -e "$f" ] && echo "ignoring $f" ;;
            esac
        done
        mariadb-admin --socket="$socket" -uroot shutdown
        wait "$pid" || true
        unset MYSQL_PWD
        echo 'MariaDB init process done. Ready for start up.'
    fi
fi

exec "$@"
"""

MARIADB_CONFIG = b"""# minicloud: listen on every address of the container, run as mysql, no name lookups
[mysqld]
bind-address = 0.0.0.0
user = mysql
skip-name-resolve
"""
