"""Every key name comes from workers/protocol/keys.py, and the ACL patterns cover exactly those keys."""

from __future__ import annotations

from fnmatch import fnmatchcase

from workers.protocol import scripts
from workers.protocol.keys import Keys
from workers.service.redis_server import ROLE_COMMANDS, role_keys


def built(keys: Keys) -> dict[str, str]:
    """One key of every family Keys builds, by family name."""
    return {
        "jobs": keys.jobs, "dead": keys.dead, "recent": keys.recent, "rate": keys.rate("ab12", 1700),
        "login_failures": keys.login_failures(1700), "client_jobs": keys.client_jobs("ab12"),
        "browser_jobs": keys.browser_jobs("cookie"), "job": keys.job("j1"), "worker": keys.worker("node", 42),
        "stats": keys.stats, "stats_minute": keys.stats_minute(28333), "nodes": keys.nodes,
        "node": keys.node("n1"), "node_events": keys.node_events, "node_timers": keys.node_timers,
    }


ROLE_FAMILIES = {
    "web": {"jobs", "rate", "login_failures", "client_jobs", "browser_jobs", "job", "stats"},
    "worker": {"jobs", "dead", "recent", "job", "worker", "stats", "stats_minute"},
    "monitor": {"jobs", "dead", "recent", "job", "worker", "stats", "stats_minute"},
}


def test_each_role_reaches_exactly_its_key_families() -> None:
    keys = Keys("demo")
    names = built(keys)
    for role in ROLE_COMMANDS:
        patterns = keys.role_patterns(role)
        reached = {family for family, name in names.items() if any(fnmatchcase(name, p) for p in patterns)}
        assert reached == ROLE_FAMILIES.get(role, set(names)), role
        for pattern in patterns:  # no pattern that matches nothing Keys builds
            assert any(fnmatchcase(name, pattern) for name in names.values()), (role, pattern)


def test_every_key_is_under_the_prefix_and_no_role_reaches_another_prefix() -> None:
    mine, other = built(Keys("demo")), built(Keys("other"))
    assert all(name.startswith("demo:") for name in mine.values())
    for role in ROLE_COMMANDS:
        patterns = Keys("demo").role_patterns(role)
        assert not any(fnmatchcase(name, p) for name in other.values() for p in patterns), role


def test_acl_selectors_are_read_only_for_the_monitor() -> None:
    assert role_keys("monitor", "demo").split()[0] == "%R~demo:jobs"
    assert role_keys("web", "demo").split()[0] == "~demo:job:*"
    assert role_keys("orchestrator", "demo") == "~demo:*"


def test_the_take_script_builds_status_keys_from_the_prefix_it_is_given() -> None:
    assert Keys("demo").job_prefix + "j1" == Keys("demo").job("j1")
    assert ":job:" not in scripts.TAKE


def test_the_start_logic_has_one_copy() -> None:
    body = "redis.call('HINCRBY', key, 'deliveries', 1)"
    assert scripts.START.count(body) == scripts.TAKE.count(body) == 1
    assert "function start" in scripts.script("start")
