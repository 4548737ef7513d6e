"""The call policy: what happens around one attempt of a call, in the order it happens.

1. `call_limits.CallLimits.permit`: wait out the provider's cooldown (a Retry-After), take
   a slot and the rate tokens of every declared limit (the provider's, the name's,
   `get_client(limits=)`'s). For `generate` and `stream` the call's `timeout` bounds these
   waits: a cooldown that outlasts it raises RateLimitError at once, a limiter wait that
   reaches it RequestTimeoutError. In a batch a prompt's timeout starts once it holds them.
2. The attempt itself (the adapter's: `clients.litellm`, `clients.vllm`). Where the
   adapter sends through `paced_http`'s clients (LiteLLM's openai SDK routes and its own
   handler's `HANDLER_ROUTES`), each request also waits for the `rpm` and `tpm` sends
   buckets just before it goes out.
3. `retries.call_with_retries`: on a `TRANSIENT_ERRORS` error (a 429, a 5xx, no response,
   a timeout), wait (the Retry-After, else backoff), take the limits again, and retry; a
   429/503 with Retry-After first cools down the provider for every client of it.
4. `fallback.FallbackClient`: when a name's retries are spent on a transient error, the
   next name of its chain takes the call, with a fresh timeout.

The client base (`clients.base`) applies 1 and 3 around the adapter's attempt; `api`
wraps a client in 4 when its name has fallbacks. (This package imports nothing at import:
`fallback` stands on the client base, which stands on the other two.)

On the common path (no limit to wait for, no event handler, no budget) the layers hand on
the coroutine of the layer below instead of awaiting it (`def`, not `async def`): every
coroutine between a batch's worker and LiteLLM is created, resumed at each of the call's
waits and unwound again, so the chain is kept short (4 coroutines; it was 11), and the
objects a call makes are few (no closures: `clients/_litellm_call.py`). Between LiteLLM's
work a call's own Python costs several times what it costs alone (benchmarks/README.md,
"Session 12" and "Session 13").
"""
