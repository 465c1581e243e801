"""Where stories run: `local` (the runner's own scheduler, `app.runner`) or `temporal` (a
workflow per story, an activity on the worker of the host that owns the story's tmux)."""
