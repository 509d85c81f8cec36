"""Amazon S3: buckets, objects, multipart uploads and listings over the replicated blob store.

    provider.py   S3Provider: the operations, composed from one mixin per resource
    buckets.py    create/head/delete/list buckets, location, versioning, tagging
    policies.py   bucket policies (validated, enforced with IAM) and CORS
    website.py    static website hosting's configuration; website_endpoint.py serves the websites
    objects.py    put/get/head/delete/copy objects, object tagging
    deletes.py    DeleteObject(s), versions and delete markers
    multipart.py  multipart uploads
    listing.py    ListObjects v1/v2, ListObjectVersions, ListMultipartUploads
    data.py       object bytes: ingest with checksums, durable commit, verified reads
    store.py      the metadata rows (SQLAlchemy Core), reference counts of blobs
    http.py       ranges, conditional requests, content headers
    names.py      bucket-name and key rules, owners, ARNs
    errors.py     S3's error codes
"""
