"""Guard + report through the official HaltState Python SDK 0.7.0, N threads for T seconds.

python_load.py URL TENANT KEY THREADS SECONDS
Prints throughput and latency percentiles in the same shape as haltstate-load.
"""
import sys
import threading
import time

from haltstate import HaltStateClient

url, tenant, key, threads, seconds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
stop = threading.Event()
latencies = []
errors = [0]
lock = threading.Lock()


def worker(index):
    client = HaltStateClient(tenant_id=tenant, api_key=key, base_url=url, timeout=5.0)
    mine = []
    n = 0
    while not stop.is_set():
        n += 1
        started = time.perf_counter()
        try:
            with client.guard("refund.create", {"amount_cents": 100}, idempotency_key=f"py:{run}:{index}:{n}", agent_id="load"):
                pass
            mine.append(time.perf_counter() - started)
        except Exception as error:  # noqa: BLE001 - counted, like haltstate-load
            with lock:
                errors[0] += 1
                if errors[0] <= 3:
                    print(f"error: {error}", file=sys.stderr)
    with lock:
        latencies.extend(mine)


run = f"{time.time_ns():x}"
began = time.perf_counter()
pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
for thread in pool:
    thread.start()
time.sleep(seconds)
stop.set()
for thread in pool:
    thread.join()
elapsed = time.perf_counter() - began
latencies.sort()


def pct(p):
    return latencies[min(len(latencies) - 1, round((len(latencies) - 1) * p))] * 1e6 if latencies else 0.0


print(f"connections      {threads}")
print(f"duration         {elapsed:.1f} s")
print(f"guarded actions  {len(latencies)} (guard + report each)")
print(f"throughput       {len(latencies) / elapsed:.0f} actions/s")
print(f"p50              {pct(0.50):.0f}µs")
print(f"p99              {pct(0.99):.0f}µs")
print(f"p999             {pct(0.999):.0f}µs")
print(f"errors           {errors[0]}")
