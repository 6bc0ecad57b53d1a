"""Images' Prometheus metrics."""

from prometheus_client import Counter, Gauge, Histogram

JOBS_CREATED = Counter("vantage_jobs_created_total", "Jobs created, by kind.", ["kind"])
JOBS_COMPLETED = Counter(
    "vantage_jobs_completed_total", "Jobs finished, by kind and status.", ["kind", "status"]
)
JOB_SECONDS = Histogram(
    "vantage_job_processing_seconds",
    "Time a worker spent on one job attempt, by kind.",
    ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUEUE_DEPTH = Gauge(
    "vantage_jobs_queued",
    "Jobs waiting for a worker, as last counted by the periodic check, by the broker queue "
    "image jobs are sent to.",
    ["queue"],
    multiprocess_mode="mostrecent",
)
UPLOAD_BYTES = Histogram(
    "vantage_upload_size_bytes",
    "Sizes of accepted uploads.",
    buckets=(1e4, 1e5, 5e5, 1e6, 2.5e6, 5e6, 1e7, 2.5e7, 5e7, 1e8),
)
VALIDATION_REJECTIONS = Counter(
    "vantage_upload_rejections_total", "Uploads refused by validation, by code.", ["code"]
)
JOB_OUTCOMES_DISCARDED = Counter(
    "vantage_job_outcomes_discarded_total",
    "Job attempts whose outcome was dropped because another attempt had taken the job over.",
    ["kind", "reason"],
)
