"""Every key name comes from workers/protocol/keys.py, and the ACL patterns cover exactly those keys."""

from __future__ import annotations

from fnmatch import fnmatchcase

from workers.protocol import scripts
from workers.protocol.keys import Keys
from workers.service.redis_server import ROLES, grants, role_patterns, role_rules


def built(keys: Keys) -> dict[str, str]:
    """One key of every family Keys builds, by family name."""
    return {
        "jobs": keys.jobs, "dead": keys.dead, "recent": keys.recent, "rate": keys.rate("ab12", 1700),
        "login_failures": keys.login_failures(1700), "client_jobs": keys.client_jobs("ab12"),
        "browser_jobs": keys.browser_jobs("cookie"), "job": keys.job("j1"), "worker": keys.worker("node", 42),
        "stats": keys.stats, "stats_minute": keys.stats_minute(28333), "nodes": keys.nodes,
        "node": keys.node("n1"), "node_events": keys.node_events, "node_timers": keys.node_timers,
        "inbox": keys.inbox, "admitting": keys.admitting, "idempotency": keys.idempotency("ab12", "f00d"),
        "webhook_outbox": keys.webhook_outbox, "ready_workers": keys.ready_workers,
        "epoch": keys.epoch, "backlog": keys.backlog,
    }


ROLE_FAMILIES = {
    # jobs: XINFO GROUPS (a queued job's place)
    "web": {"inbox", "rate", "login_failures", "client_jobs", "browser_jobs", "job", "stats", "recent", "stats_minute",
            "idempotency", "webhook_outbox", "jobs", "ready_workers", "epoch", "backlog"},
    "worker": {"jobs", "dead", "recent", "job", "worker", "stats", "stats_minute", "inbox", "admitting",
               "webhook_outbox", "ready_workers"},
    "webhooks": {"webhook_outbox", "job"},
    "keeper": {"inbox", "admitting", "jobs", "job", "epoch", "backlog"},
    # backlog, stats: the backlog's predicted seconds (protocol/backlog.py), which the policy may scale on
    "orchestrator": {"jobs", "dead", "worker", "job", "inbox", "admitting", "nodes", "node", "node_events",
                     "node_timers", "backlog", "stats"},
    "monitor": {"jobs", "dead", "recent", "job", "worker", "stats", "stats_minute", "inbox", "admitting", "backlog"},
}


def test_each_role_reaches_exactly_its_key_families() -> None:
    keys = Keys("demo")
    names = built(keys)
    for role in ROLES:
        patterns = role_patterns(role, "demo")
        reached = {family for family, name in names.items() if any(fnmatchcase(name, p) for p in patterns)}
        assert reached == ROLE_FAMILIES.get(role, set(names)), role
        for pattern in patterns:  # no pattern that matches nothing Keys builds
            assert any(fnmatchcase(name, pattern) for name in names.values()), (role, pattern)


def test_every_key_is_under_the_prefix_and_no_role_reaches_another_prefix() -> None:
    mine, other = built(Keys("demo")), built(Keys("other"))
    assert all(name.startswith("demo:") for name in mine.values())
    for role in ROLES:
        patterns = role_patterns(role, "demo")
        assert not any(fnmatchcase(name, p) for name in other.values() for p in patterns), role


def test_writes_are_granted_per_key_family_and_only_the_keeper_writes_the_stream() -> None:
    keys = Keys("demo")
    writers = {role: [g for g in grants(role, "demo") if "+xadd" in g.commands.split()] for role in ROLES}
    assert [g.patterns for g in writers["keeper"]] == [(keys.jobs,)]
    assert [g.patterns for g in writers["worker"]] == [(keys.dead,)]  # dead letters, never the jobs stream
    assert not writers["web"] and not writers["orchestrator"] and not writers["monitor"]
    assert role_rules("monitor", "demo").split()[0] == "%R~demo:jobs"
    assert role_rules("web", "demo").startswith("~demo:job:* ") and "(~demo:inbox +lpush)" in role_rules("web", "demo")
    assert all("+eval" not in role_rules(role, "demo") for role in ROLES)


def test_the_take_script_builds_status_keys_from_the_prefix_it_is_given() -> None:
    assert Keys("demo").job_prefix + "j1" == Keys("demo").job("j1")
    assert ":job:" not in scripts.script(*scripts.FUNCTIONS["take"])


def test_the_start_logic_has_one_copy() -> None:
    body = "redis.call('HINCRBY', key, 'deliveries', 1)"
    assert [path.stem for path in scripts.FOLDER.glob("*.lua") if body in path.read_text()] == ["start"]
    assert all("start" in scripts.FUNCTIONS[name] for name in ("start", "take"))


def test_the_library_names_carry_the_code_hash() -> None:
    code = scripts.library_code()
    assert code.startswith(f"#!lua name={scripts.LIBRARY}\n") and scripts.VERSION in scripts.TAKE
    assert code.count("redis.register_function(") == len(scripts.FUNCTIONS)
