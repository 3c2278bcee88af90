"""``[core] hostname_callable`` for the distributed test: two Celery workers on one machine
report different host names, so the test can see which worker ran each task."""

import os


def hostname() -> str:
    return os.environ["INGEST_TEST_WORKER"]
