"""The base images users expect from Docker Hub (``library/*``), built from Debian bookworm.

Layering: debian:bookworm-slim is one layer; python:3.11-slim, nginx, postgres and mariadb add one
layer each on top of it (as the official images build on bookworm-slim); python:3.11 adds one on
top of debian:bookworm. busybox is one small layer of its own.
"""

from __future__ import annotations

from minicloud.images.entrypoints import MARIADB, MARIADB_CONFIG, POSTGRES
from minicloud.images.recipes import DEFAULT_PATH, File, ImageConfig, Recipe, register

PG_MAJOR = "15"
PG_BIN = f"/usr/lib/postgresql/{PG_MAJOR}/bin"
_PIP_UNMANAGED = "rm -f /usr/lib/python3*/EXTERNALLY-MANAGED"  # pip installs like the official image's

BUSYBOX = Recipe(
    name="busybox", repository="library/busybox", tags=("latest", "1.35", "stable"), kind="busybox",
    config=ImageConfig(cmd=("sh",)), description="busybox-static: /bin/busybox and its applets")

DEBIAN = Recipe(
    name="debian", repository="library/debian", tags=("bookworm", "latest", "12", "stable"),
    config=ImageConfig(cmd=("bash",)), description="Debian 12 minbase")

DEBIAN_SLIM = Recipe(
    name="debian-slim", repository="library/debian", tags=("bookworm-slim", "12-slim", "stable-slim"), slim=True,
    config=ImageConfig(cmd=("bash",)), description="Debian 12 minbase without docs, manuals and translations")

_PYTHON_CONFIG = ImageConfig(env=(("PATH", DEFAULT_PATH), ("LANG", "C.UTF-8"), ("PYTHON_VERSION", "3.11")),
                             cmd=("python3",))

PYTHON_SLIM = Recipe(
    name="python-slim", repository="library/python", tags=("3.11-slim", "3.11-slim-bookworm", "3-slim", "slim"),
    base="debian-slim", packages=("python3", "python-is-python3", "python3-pip"), commands=(_PIP_UNMANAGED,),
    config=_PYTHON_CONFIG, description="Python 3.11 (python3, python, pip) on debian:bookworm-slim")

PYTHON = Recipe(
    name="python", repository="library/python", tags=("3.11", "3.11-bookworm", "3", "latest"),
    base="debian", packages=("python3", "python-is-python3", "python3-pip", "python3-venv"),
    commands=(_PIP_UNMANAGED,), config=_PYTHON_CONFIG,
    description="Python 3.11 (python3, python, pip, venv) on debian:bookworm")

NGINX = Recipe(
    name="nginx", repository="library/nginx", tags=("latest", "1.22", "stable", "bookworm"),
    base="debian-slim", packages=("nginx-light",),
    commands=(
        "ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log",
        # a container may have no IPv6: listen on IPv4 only, as the official image does then
        "sed -i '/listen \\[::\\]/d' /etc/nginx/sites-available/default",
    ),
    config=ImageConfig(cmd=("nginx", "-g", "daemon off;"), exposed_ports=("80/tcp",), stop_signal="SIGQUIT"),
    description="nginx (Debian's nginx-light) serving its default page on port 80")

POSTGRES_IMAGE = Recipe(
    name="postgres", repository="library/postgres", tags=(PG_MAJOR, f"{PG_MAJOR}-bookworm", "latest"),
    base="debian-slim", packages=(f"postgresql-{PG_MAJOR}",),
    files=(File("/usr/local/bin/docker-entrypoint.sh", POSTGRES.encode(), 0o755),),
    commands=(
        f"if [ -d /etc/postgresql/{PG_MAJOR}/main ]; then pg_dropcluster {PG_MAJOR} main; fi",
        f"sed -ri \"s!^#?(listen_addresses)\\s*=\\s*\\S+.*!\\1 = '*'!\" "
        f"/usr/share/postgresql/{PG_MAJOR}/postgresql.conf.sample",
        "install -d -o postgres -g postgres -m 3777 /var/run/postgresql",
        "install -d -o postgres -g postgres -m 700 /var/lib/postgresql/data",
        "mkdir -p /docker-entrypoint-initdb.d",
    ),
    config=ImageConfig(
        env=(("PATH", f"{DEFAULT_PATH}:{PG_BIN}"), ("LANG", "C.UTF-8"), ("PG_MAJOR", PG_MAJOR),
             ("PGDATA", "/var/lib/postgresql/data")),
        entrypoint=("docker-entrypoint.sh",), cmd=("postgres",), exposed_ports=("5432/tcp",),
        volumes=("/var/lib/postgresql/data",), stop_signal="SIGINT"),
    description="PostgreSQL 15; POSTGRES_PASSWORD/POSTGRES_USER/POSTGRES_DB initialise it on the first start")

MARIADB_IMAGE = Recipe(
    name="mariadb", repository="library/mariadb", tags=("10.11", "10", "lts", "latest"),
    base="debian-slim", packages=("mariadb-server",),
    files=(File("/usr/local/bin/docker-entrypoint.sh", MARIADB.encode(), 0o755),
           File("/etc/mysql/mariadb.conf.d/99-minicloud.cnf", MARIADB_CONFIG)),
    commands=(
        "rm -rf /var/lib/mysql && install -d -o mysql -g mysql -m 755 /var/lib/mysql /run/mysqld",
        "mkdir -p /docker-entrypoint-initdb.d",
    ),
    config=ImageConfig(entrypoint=("docker-entrypoint.sh",), cmd=("mariadbd",), exposed_ports=("3306/tcp",),
                       volumes=("/var/lib/mysql",)),
    description="MariaDB 10.11; MARIADB_ROOT_PASSWORD (or MYSQL_ROOT_PASSWORD), MARIADB_DATABASE, ...")

LIBRARY = (BUSYBOX, DEBIAN, DEBIAN_SLIM, PYTHON_SLIM, PYTHON, NGINX, POSTGRES_IMAGE, MARIADB_IMAGE)

for _recipe in LIBRARY:
    register(_recipe)
