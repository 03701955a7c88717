"""The agentnn routes beside MLflow's REST API: what the server can do, and the bulk ingest.

Every answer is JSON; an error is ``{"error_code": ..., "message": ...}`` as MLflow's REST API
words its own, so MLflow's client (and agentnn's classification of store errors) reads it.
docs/team-server.md describes the routes.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from agentnn import __version__
from agentnn.mlflow_integration.journal import transfer
from agentnn.server import ingest
from agentnn.server.permissions import auth_enabled, require_run

__all__ = ["blueprint", "capabilities"]

blueprint = Blueprint("agentnn", __name__)
READS_KEY = "AGENTNN_READS"  # the Flask app's config key: names of the read routes registered


@blueprint.get(transfer.CAPABILITIES_PATH)
def capabilities() -> Response:
    """What this server offers, for a client deciding which path to take (asked once)."""
    from flask import current_app

    return jsonify({
        "api": transfer.API_VERSION,
        "agentnn": __version__,
        "ingest": ingest.native_engine() is not None,
        "encodings": sorted(transfer.ENCODINGS),
        "limits": ingest.LIMITS,
        "reads": list(current_app.config.get(READS_KEY, ())),
        "auth": auth_enabled(),
    })


@blueprint.post(f"{transfer.API_PREFIX}/runs/<run_id>/chunks")
def ingest_chunks(run_id: str) -> tuple[Response, int]:
    """Store one request's journal chunks for the run, all or nothing (see ``ingest``)."""
    require_run(run_id, "update")
    engine = ingest.native_engine()
    if engine is None:
        answer = ingest.Answer.refusal(
            501, "NOT_IMPLEMENTED",
            "this server's store has no native bulk path; send with MLflow's log_batch")
    elif request.content_length is not None and request.content_length > ingest.MAX_BODY_BYTES:
        answer = ingest.Answer.refusal(
            413, "BAD_REQUEST", f"the body has {request.content_length:,} bytes, more than "
            f"{ingest.MAX_BODY_BYTES:,}; see the capabilities' limits")
    else:
        body = request.stream.read(ingest.MAX_BODY_BYTES + 1)
        encoding = request.headers.get("Content-Encoding", "")
        answer = ingest.ingest(engine, run_id, body, encoding)
    return jsonify(answer.body), answer.status
