"""The one botocore session of the process, that every AWS client is built from."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def session() -> Any:
    # botocore's own session, not boto3's: any import of boto3 loads s3transfer (~130 ms
    # of cold start) that no function uses. One per process, as boto3's default session:
    # each new session parses endpoints.json and the service models again.
    import botocore.session

    return botocore.session.get_session()
