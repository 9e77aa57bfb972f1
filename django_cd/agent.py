"""The release agent: one Django process that runs a deploy's ``manage.py`` commands.

Starting Django is most of what a ``manage.py`` command costs (0.4-0.7 s, a
bare Python is 0.02 s), and a deploy runs several in the new release: the
checks, ``collectstatic``, the plan, ``migrate``, the recording. The engine
starts ``manage.py cdagent`` once per release and sends it each command
instead (``django_cd.pipeline.agent``); the agent runs it as ``manage.py``
would, in its own process, and answers with the exit status.

The protocol is one JSON object per line. The engine writes requests to the
agent's stdin: ``{"argv": [...], "stdin": "..." | null, "output": PATH}``;
the agent answers on its stdout with ``MARKER {"code": N}`` once the command
ended, its combined stdout and stderr (file descriptors 1 and 2, so the
output of loggers and child processes too) written to ``PATH``. Before the
first request it says ``MARKER {"ready": PID}``. Anything else on its stdout
is noise to skip. End of input ends the agent.

Between commands the agent closes every database connection: a restore may
drop the database or replace its file, and must find nobody attached.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import sys
import traceback
from typing import Any, BinaryIO

MARKER = "@@django-cd-agent@@"


def serve(prog: str) -> None:
    """Answer requests until end of input. ``prog`` is how ``manage.py`` was called."""
    # The protocol keeps private copies of fds 0 and 1; a command (or a child it
    # starts) that reads fd 0 gets /dev/null, and stray writes go where fd 2 goes.
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    _reply(replies, {"ready": os.getpid()})
    for line in requests:
        if not line.strip():
            continue
        request = json.loads(line)
        code = run(prog, request["argv"], request.get("stdin"), request["output"])
        _reply(replies, {"code": code})
    _exit_now()


def _exit_now() -> None:
    """End of input: exit without unloading Django module by module, which a deploy
    would wait for (a few tenths of a second). What an exit must do still happens:
    the exit handlers (coverage's data, for one) and the buffered output."""
    from django.db import connections

    connections.close_all()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def run(prog: str, argv: list[str], stdin: str | None, output: str) -> int:
    """Run ``manage.py argv`` here, as its own process would; its exit status."""
    from django.core.management import ManagementUtility
    from django.db import connections

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    saved_stdin = sys.stdin
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdin = io.StringIO(stdin or "")
    try:
        ManagementUtility([prog, *argv]).execute()
        code = 0
    except SystemExit as exit:
        code = _exit_status(exit.code)
    except BaseException:  # what would have killed the process, reported as it would be
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for each in saved:
            os.close(each)
        sys.stdin = saved_stdin
        connections.close_all()
        _make_text(output)
    return code


def _make_text(path: str) -> None:
    """The engine reads the output as text: bytes that are not UTF-8 become U+FFFD."""
    with open(path, "rb") as output:
        data = output.read()
    try:
        data.decode()
    except UnicodeDecodeError:
        with open(path, "w") as output:
            output.write(data.decode(errors="replace"))


def _exit_status(code: Any) -> int:
    """What ``sys.exit(code)`` makes a process exit with (printing a message, as it)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stdout.flush()  # as at a process's exit: what it printed comes first
    print(code, file=sys.stderr)
    return 1


def _reply(replies: BinaryIO, data: dict[str, Any]) -> None:
    replies.write(f"{MARKER} {json.dumps(data)}\n".encode())
