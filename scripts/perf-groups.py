#!/usr/bin/env python3
"""Where a profile's samples go, grouped as docs/perf/README.md quotes them: each sample counts for the first group
(in this order) whose pattern matches a frame of its stack.
    scripts/perf-groups.py PROFILE.folded[.gz]"""
import collections
import gzip
import re
import sys

GROUPS = [
    # First: the decision may run inside an operation of the writer's batch; it counts as policy wherever it runs.
    ('policy (Cedar, context)', r'judge|PolicyEngine'),
    # The recorder's frames, wherever they run (a batch records its size and duration).
    ('metrics', r'haltstate_server::metrics|metrics_exporter|metrics_util|metrics::recorder'),
    # The COMMIT statement: in a closure of the runner's `run_batch` until 2068a93, inlined into it since.
    ('batch: commit', r'run_batch.*(closure#4|store_heads)|>::run_batch;execute_with_bound_parameters'),
    # The operations' frames: `ops::*` in builds before 2026-12, the writer's closures of `decisions` after.
    ('batch: guard op', r'ops::guard::guard|decisions::\{impl#0\}::guard::\{closure_env'),
    ('batch: report op', r'ops::report::report|decisions::\{impl#0\}::report::\{closure_env'),
    ('batch: other', r'run_batch'),
    ('authenticate', r'auth::authenticate'),
    ('net send', r'tcp_sendmsg|__sys_sendto|sock_write_iter'),
    ('net recv', r'tcp_recvmsg|sock_read_iter|__sys_recvfrom'),
    ('epoll', r'epoll'),
    ('futex/condvar', r'futex'),
    # The kernel's own functions only: until 2026-12-04 this matched any frame containing "schedule", tokio's
    # `scheduler` frames too, so it held every worker sample no group above claimed (15-16% at 64 connections,
    # of which 5.4% was the kernel's).
    ('kernel scheduling', r'(^|;)(__schedule|schedule|schedule_timeout|schedule_hrtimeout_range|schedule_idle|'
                          r'preempt_schedule[^;]*|finish_task_switch[^;]*)(;|$)'),
    ('body decode (json)', r'body::decode|from_trait|serde_json::de'),
    ('reply encode (json)', r'to_writer|serde_json::ser'),
    # hyper's parsing and encoding functions only: its dispatcher's frames name `role::Server` in their generic
    # arguments, and until 2026-12-04 this matched them (every sample under a connection nothing above claimed).
    ('http parse/encode', r'Http1Transaction|httparse|(^|;)(parse|encode_head|write_head|encode_headers)<'),
    # What is left on the runtime's workers: axum's routing and middleware, hyper's dispatch, tokio's task polls.
    ('async runtime, rest', r'tokio::runtime|hyper::|axum::'),
]

path = sys.argv[1]
opened = gzip.open(path, 'rt') if path.endswith('.gz') else open(path)
total, counts = 0, collections.Counter()
with opened as folded:
    for line in folded:
        stack, samples = line.rsplit(' ', 1)
        total += int(samples)
        group = next((name for name, pattern in GROUPS if re.search(pattern, stack)), 'other')
        counts[group] += int(samples)
for name in [name for name, _ in GROUPS] + ['other']:
    print(f"{100 * counts[name] / max(total, 1):5.1f}% {name}")
