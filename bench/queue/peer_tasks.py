"""RQ's no-op job: the function the bench enqueues (imported by `rq worker` from PYTHONPATH)."""


def noop() -> None:
    return None
