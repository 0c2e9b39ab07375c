"""What every route needs: the settings, the Redis client, key names, the upload store and the URL policy."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from config import Settings
from web.inputs import InputStore
from workers.inputs.urlpolicy import UrlPolicy
from workers.protocol.keys import Keys


@dataclass
class Context:
    settings: Settings
    redis: redis.Redis
    keys: Keys
    inputs: InputStore
    policy: UrlPolicy
