"""Celery's no-op task, with Redis as broker and result backend (imported by `celery -A celery_app`)."""

import os

from celery import Celery

QUEUE = "bench"

app = Celery("bench", broker=os.environ["BENCH_REDIS_URL"], backend=os.environ["BENCH_REDIS_URL"])
app.conf.update(task_default_queue=QUEUE, broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)


@app.task(name="bench.noop")
def noop() -> None:
    return None
