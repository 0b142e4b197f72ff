"""Prometheus text exposition of the server's counters: requests by endpoint and status, latency, batch sizes,
queue depth."""

from __future__ import annotations

from typing import Any


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text(requests: dict[tuple[str, int], int], latency: dict[str, list[float]], batches: dict[str, Any],
                    max_batch_size: int) -> str:
    """Prometheus text exposition: requests by endpoint and status, latency sum/count, per-model batch stats.

    ``latency`` maps an endpoint to ``[seconds, count]``; ``batches`` maps a model to its ``BatchStats``."""
    out = ["# HELP omnivec_requests_total HTTP requests by endpoint and status.",
           "# TYPE omnivec_requests_total counter"]
    for (endpoint, status), n in sorted(requests.items()):
        out.append(f'omnivec_requests_total{{endpoint="{_label(endpoint)}",status="{status}"}} {n}')
    out += ["# HELP omnivec_request_duration_seconds Time from request to response.",
            "# TYPE omnivec_request_duration_seconds summary"]
    for endpoint, (seconds, count) in sorted(latency.items()):
        out += [f'omnivec_request_duration_seconds_sum{{endpoint="{_label(endpoint)}"}} {seconds:.6f}',
                f'omnivec_request_duration_seconds_count{{endpoint="{_label(endpoint)}"}} {int(count)}']
    # Powers of two up to the largest possible batch: enough to see whether batching happens.
    bounds = [2**k for k in range(max(1, max_batch_size).bit_length() + 1)]
    out += ["# HELP omnivec_batch_size Items per model call.", "# TYPE omnivec_batch_size histogram"]
    for model, stats in sorted(batches.items()):
        m = _label(model)
        for bound in bounds:
            below = sum(n for size, n in stats.batch_sizes.items() if size <= bound)
            out.append(f'omnivec_batch_size_bucket{{model="{m}",le="{bound}"}} {below}')
        out += [f'omnivec_batch_size_bucket{{model="{m}",le="+Inf"}} {stats.batches}',
                f'omnivec_batch_size_sum{{model="{m}"}} {sum(k * n for k, n in stats.batch_sizes.items())}',
                f'omnivec_batch_size_count{{model="{m}"}} {stats.batches}']
    for metric, kind, field, help_ in (
        ("queue_depth", "gauge", "queue_depth", "Items waiting for a model call."),
        ("rejected_total", "counter", "rejected", "Requests refused because the queue was full."),
        ("timeouts_total", "counter", "timeouts", "Requests that timed out waiting for the model."),
        ("failed_batches_total", "counter", "failed_batches", "Model calls that raised."),
        ("model_seconds_total", "counter", "total_seconds", "Time spent in model calls."),
    ):
        out += [f"# HELP omnivec_{metric} {help_}", f"# TYPE omnivec_{metric} {kind}"]
        out += [f'omnivec_{metric}{{model="{_label(m)}"}} {getattr(st, field)}' for m, st in sorted(batches.items())]
    return "\n".join(out) + "\n"
