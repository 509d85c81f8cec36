"""Amazon S3: buckets, objects, multipart uploads and listings over the replicated blob store.

    provider.py   S3Provider: the operations, composed from one mixin per resource
    buckets.py    create/head/delete/list buckets, location, versioning, tagging
    policies.py   bucket policies (validated, enforced with IAM) and CORS
    accelerate.py transfer acceleration (stored and answered)
    payment.py    requester pays (payer.py: its check, called by base.authorize)
    bucket_logging.py, access_logs.py, access_log_format.py   server access logging: the
                  configuration, the records kept per process and their delivery as log objects
    website.py    static website hosting's configuration; website_endpoint.py serves the websites
    objects.py    put/get/head/delete/copy objects, object tagging
    deletes.py    DeleteObject(s), versions and delete markers
    multipart.py  multipart uploads
    listing.py    ListObjects v1/v2, ListObjectVersions, ListMultipartUploads
    lifecycle.py  lifecycle configuration (expiry.py: the controller that applies it; transitions.py:
                  storage-class transitions, S3's waterfall)
    archive.py    reading GLACIER/DEEP_ARCHIVE versions; restore.py: RestoreObject and its controller
    data.py       object bytes: ingest with checksums, durable commit, verified reads
    store.py      the metadata rows (SQLAlchemy Core), reference counts of blobs
    http.py       ranges, conditional requests, content headers
    names.py      bucket-name and key rules, owners, ARNs
    errors.py     S3's error codes
"""
