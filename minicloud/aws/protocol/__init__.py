"""AWS wire protocols, driven by botocore's service models: query, ec2, json, rest-json, rest-xml
and smithy-rpc-v2-cbor.

    models.load_service_model(name) -> ServiceModel          botocore model + model_patches.json
    parsers.create_parser(model) -> RequestParser
        .parse(AwsRequest) -> (OperationModel, params)        raises only ServiceError
    validate.validate(operation, params, protocol) -> None    AWS's constraint messages
    serializers.create_serializer(model) -> ResponseSerializer
        .serialize_result(operation, result, request_id) -> AwsResponse
        .serialize_error(error, operation | None, request_id) -> AwsResponse

A service that speaks several protocols (CloudWatch: CBOR, JSON, query) gets a parser that
detects each request's protocol (``parsers.detect_protocol``) and records it in
``parser_base.current_protocol``; its serializer and ``validate`` answer in that protocol.

Modules: ``routing`` (REST routes), ``decoders``/``encoders`` (per-shape plans, built once and
cached), ``values`` (scalar wire formats), ``patterns`` (Java regexes of the models), ``cbor``,
``wire_errors`` (the errors only this layer raises).
"""
