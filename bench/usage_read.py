"""How long reading an attempt's usage takes, for a long session's transcript.

    python -m bench.usage_read [MESSAGES]

Writes a Claude transcript of MESSAGES assistant messages (each written twice, as streaming
does, with a tool-result line between) and times `Claude().read_usage` on it: the time a stage
spends after its session is killed. Prints the file size and median / max of 5 reads in ms.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from orchestrator.agents.clis.base import UsageQuery
from orchestrator.agents.clis.claude import Claude, project_folder


def main(messages: int) -> None:
    """Write the transcript, then time five reads."""
    with tempfile.TemporaryDirectory() as home:
        cwd = Path("/work/app")
        path = Path(home) / ".claude" / "projects" / project_folder(cwd) / "s.jsonl"
        path.parent.mkdir(parents=True)
        filler = "x" * 1500
        with path.open("w") as handle:
            for n in range(messages):
                usage = {"input_tokens": 5, "output_tokens": 300, "cache_read_input_tokens": 40000}
                message = {"id": f"m{n}", "model": "claude-sonnet-4-5", "usage": usage}
                entry = {"type": "assistant", "requestId": f"r{n}", "message": message}
                line = json.dumps({**entry, "content": filler}) + "\n"
                handle.write(line + line)
                handle.write(json.dumps({"type": "user", "content": filler}) + "\n")
        query = UsageQuery(name="s", run_dir=Path(home), session_id="s", cwd=cwd, started_ns=0)
        query = UsageQuery(**{**query.__dict__, "env": {"HOME": home}})
        times = []
        for _ in range(5):
            started = time.perf_counter()
            record = Claude().read_usage(query)
            times.append((time.perf_counter() - started) * 1000)
        assert record is not None
        size = path.stat().st_size / 1e6
        print(
            f"{messages} messages, {size:.1f} MB: median {statistics.median(times):.0f} ms, "
            f"max {max(times):.0f} ms"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
