"""Drives the official HaltState Python SDK 0.7.0, unmodified, against our server.

Run by tests/python_sdk.rs, which starts the server and passes its address, an agent key, the `haltstate`
binary and the database file in the environment. Operators act through our CLI, as a person would.
Every step asserts; the last line printed is "CONFORMANCE OK <steps>".
"""
import datetime
import os
import signal
import subprocess
import threading
import time

from haltstate import (
    ActionDenied,
    ApprovalPending,
    HaltStateClient,
)
from janus.models import ApprovalStatus, Decision

BASE = os.environ["HS_BASE"]
TENANT = os.environ["HS_TENANT"]
KEY = os.environ["HS_AGENT_KEY"]
BIN = os.environ["HS_BIN"]
DB = os.environ["HS_DB"]
AGENT = "billing-agent"
steps = []

# The SDK stops the agent with `_thread.interrupt_main()`, which does nothing while SIGINT is ignored, and a
# process started in the background (a CI job run with `&`) inherits it ignored. Python's own handler makes the
# kill-switch step test the SDK, not how the test was launched.
signal.signal(signal.SIGINT, signal.default_int_handler)


def step(name):
    steps.append(name)
    print(f"ok {len(steps)} - {name}", flush=True)


def cli(*args):
    done = subprocess.run([BIN, *args, "--db", DB, "--tenant", TENANT], capture_output=True, text=True)
    assert done.returncode == 0, f"haltstate {' '.join(args)} failed: {done.stderr}"
    return done.stdout


client = HaltStateClient(tenant_id=TENANT, api_key=KEY, base_url=BASE, timeout=5.0)

# check: the three decisions
allow = client.check("refund.create", {"amount_cents": 100}, agent_id=AGENT)
assert allow.decision == Decision.ALLOW, allow
assert allow.policy_id == "refunds.small", allow
step("check ALLOW")
deny = client.check("refund.create", {"amount_cents": 900000}, agent_id=AGENT)
assert deny.decision == Decision.DENY and deny.reason == "no policy permits this action", deny
step("check DENY")
needs_human = client.check("refund.create", {"amount_cents": 90000}, agent_id=AGENT)
assert needs_human.decision == Decision.APPROVAL_REQUIRED and needs_human.approval_id, needs_human
step("check APPROVAL_REQUIRED")

# report on a check
client.report(allow, "success", agent_id=AGENT, action="refund.create")
step("report")

# wait_for_approval: an operator approves from the CLI while the client polls
threading.Timer(0.5, lambda: cli("approvals", "approve", needs_human.approval_id, "--as", "alice")).start()
decision = client.wait_for_approval(needs_human.approval_id, timeout=30, poll_interval=0.2, max_poll_interval=0.5)
assert decision.status == ApprovalStatus.APPROVED and decision.approver == "alice", decision
step("wait_for_approval")

# guard: allowed runs the block
ran = []
with client.guard("refund.create", {"amount_cents": 100}, idempotency_key="py:small", agent_id=AGENT) as permit:
    ran.append(permit)
assert len(ran) == 1 and ran[0].approved_at, ran
step("guard allowed")

# guard: pending -> approved with the CLI -> runs on retry
try:
    with client.guard("refund.create", {"amount_cents": 90000}, idempotency_key="py:big", agent_id=AGENT):
        raise AssertionError("the block ran while approval was pending")
except ApprovalPending as pending:
    approval_id = pending.approval_id
    assert approval_id and approval_id != "py:big", pending
step("guard pending")
try:
    with client.guard("refund.create", {"amount_cents": 90000}, idempotency_key="py:big", agent_id=AGENT):
        raise AssertionError("the block ran while approval was pending")
except ApprovalPending as again:
    assert again.approval_id == approval_id, "the same key must find the same approval"
step("guard pending again, same approval")
cli("approvals", "approve", approval_id, "--as", "alice")
with client.guard("refund.create", {"amount_cents": 90000}, idempotency_key="py:big", agent_id=AGENT) as permit:
    assert permit.approver == "alice" and permit.approval_id == approval_id, permit
    ran.append(permit)
assert len(ran) == 2
step("guard approved runs on retry")

# guard: pending -> rejected -> denied
try:
    with client.guard("refund.create", {"amount_cents": 80000}, idempotency_key="py:reject", agent_id=AGENT):
        raise AssertionError("ran while pending")
except ApprovalPending as pending:
    cli("approvals", "reject", pending.approval_id, "--as", "bob", "--reason", "suspicious")
try:
    with client.guard("refund.create", {"amount_cents": 80000}, idempotency_key="py:reject", agent_id=AGENT):
        raise AssertionError("the block ran after a rejection")
except ActionDenied as denied:
    assert denied.reason == "suspicious", denied.reason
step("guard rejected -> denied")

# get_approvals_since: both approvals and the rejection, in order
since = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)).isoformat()
decided = client.get_approvals_since(since)
by_id = {d.request_id: d.status for d in decided}
assert by_id.get(needs_human.approval_id) == ApprovalStatus.APPROVED, by_id
assert by_id.get(approval_id) == ApprovalStatus.APPROVED, by_id
assert ApprovalStatus.REJECTED in by_id.values(), by_id
step("get_approvals_since")

# kill switch: the heartbeat sees KILL and interrupts the main thread
watched = HaltStateClient(
    tenant_id=TENANT, api_key=KEY, base_url=BASE, enable_kill_switch=True, kill_switch_interval=0.2, agent_id=AGENT
)
cli("kill", "--agent", AGENT, "--as", "oncall")
try:
    for _ in range(150):
        time.sleep(0.1)
    raise AssertionError("the kill switch never fired")
except KeyboardInterrupt:
    step("kill switch heartbeat")
try:
    with client.guard("refund.create", {"amount_cents": 100}, idempotency_key="py:after-kill", agent_id=AGENT):
        raise AssertionError("the block ran while killed")
except ActionDenied as denied:
    assert "kill switch" in denied.reason, denied.reason
step("guard denied while killed")

print(f"CONFORMANCE OK {len(steps)}", flush=True)
