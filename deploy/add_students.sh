#!/usr/bin/env bash
# One OS user per student for the classroom hub (deploy/jupyterhub_config.py), and the shared data made
# read-only by permission. Run as root, before starting the hub:
#
#   deploy/add_students.sh [--home-base DIR] [--data DIR] [--reach PATH]... NAME...   create the students
#   deploy/add_students.sh --remove NAME...                          delete them and their homes
#
#   --home-base DIR  parent of the homes (default /home): DIR/NAME, mode 0700, owned by NAME
#   --data DIR       the shared data: owned by root, folders 0755, files 0644 (students read, nobody
#                    but root writes; root is not a student: the hub starts every server as its student)
#   --reach PATH     (repeatable) something every student's server must reach: the interpreter the hub runs
#                    (.venv/bin/python) and the course folder (the repo: tlwidgets, lab settings). Every folder
#                    on the way to PATH and to the real file it links to gets o+x (search, not listing), else
#                    a student's server cannot start ("Permission denied: jupyterhub-singleuser"), e.g. with a
#                    pyenv Python or a checkout under /root (0700). Prints each folder it changes; nothing to
#                    do for a Python in /usr or /opt and a course in /srv.
#
# Every student is in the group tllab-students and has no login shell (/usr/sbin/nologin): they reach the
# machine only through the hub. The GECOS field "tllab student" marks the users this script made; --remove
# deletes only those, so it never removes an account somebody else created.
set -euo pipefail
GROUP=tllab-students
MARK="tllab student"
home_base=/home
data=""
reach=()
remove=0
names=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --home-base) home_base="${2:?--home-base needs a folder}"; shift 2 ;;
        --data) data="${2:?--data needs a folder}"; shift 2 ;;
        --reach) reach+=("${2:?--reach needs a path}"); shift 2 ;;
        --remove) remove=1; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        -*) echo "add_students.sh: unknown option $1 (allowed: --home-base DIR, --data DIR, --reach PATH, --remove)" >&2; exit 2 ;;
        *) names+=("$1"); shift ;;
    esac
done
if [[ "$(id -u)" -ne 0 ]]; then
    echo "add_students.sh: must run as root (it creates OS users), running as $(id -un)" >&2
    exit 1
fi
for name in "${names[@]}"; do
    if ! [[ "$name" =~ ^[a-z_][a-z0-9_-]{0,30}$ ]]; then
        echo "add_students.sh: student name '$name' is not a valid user name (lower-case letters, digits, _ and -)" >&2
        exit 2
    fi
done

if [[ $remove -eq 1 ]]; then
    for name in "${names[@]}"; do
        entry="$(getent passwd "$name" || true)"
        [[ -z "$entry" ]] && { echo "no user $name (nothing to remove)"; continue; }
        if [[ "$(cut -d: -f5 <<<"$entry")" != "$MARK" ]]; then
            echo "add_students.sh: user $name was not created by this script (GECOS is not '$MARK'); left alone" >&2
            exit 1
        fi
        pkill -KILL -u "$name" 2>/dev/null || true  # a server or kernel still running as the student
        home="$(cut -d: -f6 <<<"$entry")"
        for group in /sys/fs/cgroup/{memory,cpu}/tllab/"$name" /sys/fs/cgroup/tllab/"$name"; do
            for _ in 1 2 3 4 5; do  # the limits' cgroup (deploy/limits.py), once its killed processes are gone
                [[ -d "$group" ]] && ! rmdir "$group" 2>/dev/null && sleep 0.2 || break
            done
        done
        userdel "$name"
        rm -rf --one-file-system "$home"
        echo "removed student $name and $home"
    done
    exit 0
fi

getent group "$GROUP" >/dev/null || groupadd --system "$GROUP"
mkdir -p "$home_base"
for name in "${names[@]}"; do
    entry="$(getent passwd "$name" || true)"
    if [[ -n "$entry" && "$(cut -d: -f5 <<<"$entry")" != "$MARK" ]]; then
        echo "add_students.sh: user $name already exists and is not a student made by this script; pick another name" >&2
        exit 1
    fi
    if [[ -z "$entry" ]]; then
        useradd --create-home --home-dir "$home_base/$name" --gid "$GROUP" --comment "$MARK" \
                --shell /usr/sbin/nologin --key UMASK=077 "$name"
    fi
    home="$(getent passwd "$name" | cut -d: -f6)"
    chown "$name:$GROUP" "$home"
    chmod 0700 "$home"
    echo "student $name: uid $(id -u "$name"), home $home (0700)"
done
if [[ -n "$data" ]]; then
    chown -R root:root "$data"
    find "$data" -type d -exec chmod 0755 {} +
    find "$data" -type f -exec chmod 0644 {} +
    echo "shared data $data: owned by root, read-only for students"
fi
for path in "${reach[@]}"; do
    [[ -e "$path" ]] || { echo "add_students.sh: --reach $path does not exist" >&2; exit 2; }
    for target in "$(cd "$(dirname "$path")" && pwd)/$(basename "$path")" "$(readlink -f "$path")"; do
        folder="$(dirname "$target")"
        while [[ "$folder" != "/" ]]; do
            if [[ "$(( 0$(stat -c %a "$folder") & 01 ))" -eq 0 ]]; then
                chmod o+x "$folder"
                echo "made $folder searchable by students (o+x) for $path"
            fi
            folder="$(dirname "$folder")"
        done
    done
done
