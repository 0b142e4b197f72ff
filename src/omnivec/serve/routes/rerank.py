"""``POST /v1/rerank`` (Cohere's and Jina's schema): documents scored against a query, best first. ``model`` may be
left out when one reranker is served."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from omnivec.serve import schemas as s
from omnivec.serve.errors import ApiError
from omnivec.serve.model_calls import check_results, submit
from omnivec.serve.openapi import MODEL_ERRORS
from omnivec.serve.request_decoding import check_text
from omnivec.serve.state import server_state

router = APIRouter()


@router.post("/v1/rerank", response_model=s.RerankResponse, response_model_exclude_none=True, responses=MODEL_ERRORS)
async def rerank(body: s.RerankRequest, request: Request) -> s.RerankResponse:
    state = server_state(request)
    state.authorize(request)
    name = state.reranker(body.model)
    docs = body.texts()
    if len(docs) > state.settings.max_inputs:
        raise ApiError(413, f"{len(docs)} documents exceed the limit of {state.settings.max_inputs}", "too_many_inputs")
    check_text(body.query, "'query'")
    for i, doc in enumerate(docs):
        check_text(doc, f"documents[{i}]")
    pairs = [(body.query, d) for d in docs]
    scores = await submit(state.batchers[name], pairs, state.settings.request_timeout_s) if docs else []
    check_results(scores, "documents", "scored")
    order = sorted(range(len(docs)), key=lambda i: scores[i], reverse=True)[: body.top_n]
    results = [s.RerankResult(index=i, relevance_score=scores[i],
                              document=s.RerankDocument(text=docs[i]) if body.return_documents else None)
               for i in order]
    count = state.counters[name]  # the query once (a long one is costly to tokenize), counted per document
    tokens = await run_in_threadpool(lambda: count([body.query]) * len(docs) + count(docs))
    return s.RerankResponse(results=results, model=body.model or name, usage=s.RerankUsage(total_tokens=tokens),
                            meta=s.RerankMeta(billed_units=s.BilledUnits(search_units=1)))
