"""Lambda's metadata tables (created by migration ``0040_lambda``).

    lambda_functions    one row per function: name, ARN, tags, resource policy, reserved concurrency
    lambda_versions     $LATEST and each published version: the configuration as a JSON document
                        (FunctionConfiguration's members) and the code's digest
    lambda_aliases      aliases: the version they point at, routing configuration
    lambda_urls         function URLs: the URL id (the host's first label), auth type, CORS
    lambda_event_queue  asynchronous invocations waiting to run (or to be retried)
    lambda_layers       one row per layer name: the number its next version gets (never reused)
    lambda_layer_versions  published layer versions: LayerVersion's members as a JSON document, the
                        zip's digest and unzipped size, the version's resource policy
                        (migration ``0041_lambda_layers``)

``s3_event_outbox`` (written by S3 with each object commit, drained here) is addressed with a
lightweight ``sa.table`` so that either side may declare it.
"""

from __future__ import annotations

import sqlalchemy as sa

from minicloud.storage.metadata.schema import UtcDateTime, metadata

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

lambda_functions = sa.Table(
    "lambda_functions", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("arn", sa.String(256), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("tags", sa.Text, nullable=False),  # JSON {key: value}
    sa.Column("policy", sa.Text, nullable=True),  # JSON policy document
    sa.Column("reserved_concurrency", sa.Integer, nullable=True),
    sa.Column("next_version", sa.Integer, nullable=False),
    sa.UniqueConstraint("account_id", "region", "name", name="uq_lambda_functions_name"),
)

lambda_versions = sa.Table(
    "lambda_versions", metadata,
    sa.Column("function_id", sa.String(32), sa.ForeignKey("lambda_functions.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("version", sa.String(16), primary_key=True),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("code_sha256", sa.String(64), nullable=True),
)

lambda_aliases = sa.Table(
    "lambda_aliases", metadata,
    sa.Column("function_id", sa.String(32), sa.ForeignKey("lambda_functions.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("version", sa.String(16), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("routing", sa.Text, nullable=True),  # JSON {version: weight}
    sa.Column("revision_id", sa.String(36), nullable=False),
)

lambda_urls = sa.Table(
    "lambda_urls", metadata,
    sa.Column("url_id", sa.String(32), primary_key=True),
    sa.Column("function_id", sa.String(32), sa.ForeignKey("lambda_functions.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("qualifier", sa.String(128), nullable=False),  # "" for the unqualified function
    sa.Column("auth_type", sa.String(16), nullable=False),
    sa.Column("cors", sa.Text, nullable=True),
    sa.Column("invoke_mode", sa.String(32), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("modified_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("function_id", "qualifier", name="uq_lambda_urls_qualifier"),
)

lambda_event_queue = sa.Table(
    "lambda_event_queue", metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("function_name", sa.String(64), nullable=False),
    sa.Column("qualifier", sa.String(128), nullable=False),
    sa.Column("request_id", sa.String(36), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("not_before", UtcDateTime, nullable=False, index=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

lambda_layers = sa.Table(
    "lambda_layers", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("name", sa.String(140), nullable=False),
    sa.Column("next_version", sa.Integer, nullable=False),
    sa.UniqueConstraint("account_id", "region", "name", name="uq_lambda_layers_name"),
)

lambda_layer_versions = sa.Table(
    "lambda_layer_versions", metadata,
    sa.Column("layer_id", sa.String(32), sa.ForeignKey("lambda_layers.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("config", sa.Text, nullable=False),  # JSON: Description, CreatedDate, CompatibleRuntimes, ...
    sa.Column("code_sha256", sa.String(64), nullable=False, index=True),
    sa.Column("unzipped_size", sa.BigInteger, nullable=False),
    sa.Column("policy", sa.Text, nullable=True),  # JSON policy document, with its "_RevisionId"
)

s3_event_outbox = sa.table(
    "s3_event_outbox",
    sa.column("id", sa.Integer), sa.column("account_id", sa.Text), sa.column("region", sa.Text),
    sa.column("function_arn", sa.Text), sa.column("bucket", sa.Text), sa.column("event_json", sa.Text),
    sa.column("created_at", UtcDateTime),
)
