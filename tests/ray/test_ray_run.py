"""`model_registry.ray`: prompts through Ray actors, answers in input order and in the
driver's store under generate_many's own keys; failed prompts as error rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import model_registry
import model_registry.ray as mr
from model_registry import Generation, ModelCallError, ResultStore
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.ray.conftest import SERVER_KEY, client_kwargs, model_name

PROMPTS = 400
_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")


async def test_a_run_through_two_actors_keeps_every_answer_in_input_order_and_in_the_store(
    ray_instance: Any, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    name = f"openai:{model_name()}"
    kwargs = client_kwargs(openai_server)
    prompts: list[Any] = [f"q{i}" for i in range(PROMPTS)]
    prompts[7] = "!status=500 this one fails"
    prompts[9] = [{"role": "user", "content": "as messages"}]
    db = tmp_path / "run.sqlite"

    results = mr.run(name, prompts, results_db=db, workers=2, **kwargs)

    assert len(results) == PROMPTS
    for i, result in enumerate(results):
        if i == 7:
            assert isinstance(result, ModelCallError)
            assert result.status_code == 500
        else:
            assert isinstance(result, Generation), (i, result)
            expected = "as messages" if i == 9 else prompts[i]
            assert result.text == f"echo: {expected}"
            assert not result.from_store
    with ResultStore(db) as store:
        summary = store.summary()
    assert (summary.results, summary.failed) == (PROMPTS - 1, 1)
    # the driver kept them under generate_many's own keys: a plain rerun calls only the
    # failed prompt again
    before = openai_server.stats(name.split(":")[1]).requests
    async with model_registry.get_client(name, **kwargs) as client:
        again = await client.generate_many(prompts, results_db=db, return_exceptions=True)
    assert openai_server.stats(name.split(":")[1]).requests == before + 1
    assert [g.from_store for g in again if isinstance(g, Generation)] == [True] * (PROMPTS - 1)


def test_a_rerun_on_ray_sends_only_what_the_store_lacks(
    ray_instance: Any, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model = model_name()
    kwargs = client_kwargs(openai_server)
    db = tmp_path / "run.sqlite"
    async_free = [f"p{i}" for i in range(20)]
    mr.run(f"openai:{model}", async_free[:12], results_db=db, workers=1, **kwargs)

    again = async_free[::-1]

    results = mr.run(f"openai:{model}", again, results_db=db, workers=1, **kwargs)

    assert openai_server.stats(model).requests == 20
    assert [r.from_store for r in results] == [False] * 8 + [True] * 12
    texts = [f"echo: {prompt}" for prompt in again]
    assert [r.text for r in results] == texts
    with ResultStore(db) as store:  # its latest batch is the rerun, in input order
        assert [(r.id, r.result and r.result.text) for r in store] == list(enumerate(texts))


def test_the_processor_keeps_the_rows_columns_and_adds_run_output_fields(
    ray_instance: Any, openai_server: FakeOpenAIServer
) -> None:
    rows = [
        {"id": "a", "prompt": "hello", "topic": "x", "messages": None},
        {"id": "b", "prompt": None, "topic": "y", "messages": [{"role": "user", "content": "hi"}]},
        {"id": "c", "prompt": "!status=500 no", "topic": "z", "messages": None},
    ]
    dataset = ray_instance.data.from_items(rows)
    process = mr.build_processor(f"openai:{model_name()}", **client_kwargs(openai_server))

    out = sorted(process(dataset).take_all(), key=lambda row: row["id"])

    assert [(r["id"], r["topic"], r["text"]) for r in out] == [
        ("a", "x", "echo: hello"),
        ("b", "y", "echo: hi"),
        ("c", "z", None),
    ]
    assert out[0]["error"] is None
    assert out[0]["finish_reason"] == "stop"
    usage = out[0]["usage"]
    assert set(usage) == {*_COUNTS, "cached_tokens", "reasoning_tokens"}  # as run writes it
    assert {k: usage[k] for k in _COUNTS} == {
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "total_tokens": 3,
    }
    assert out[2]["error"]["status_code"] == 500
    assert out[2]["error"]["class"] == "ServiceUnavailableError" or out[2]["error"]["class"]
    assert out[2]["usage"] is None


def test_model_processor_in_map_batches_as_the_docs_show_it_answers_every_row(
    ray_instance: Any, openai_server: FakeOpenAIServer
) -> None:
    from ray.data import ActorPoolStrategy

    rows: list[dict[str, Any]] = [{"id": f"r{i}", "prompt": f"w{i}"} for i in range(40)]
    rows[5] = {"id": "r5", "prompt": None}  # neither prompt nor messages: an error row
    dataset = ray_instance.data.from_items(rows)
    kwargs = {"name": f"openai:{model_name()}", "workers": 2, **client_kwargs(openai_server)}

    out = dataset.map_batches(
        mr.ModelProcessor,
        fn_constructor_kwargs=kwargs,
        compute=ActorPoolStrategy(size=2),
        batch_size=16,
    ).take_all()

    by_id = {row["id"]: row for row in out}
    assert sorted(by_id) == sorted(row["id"] for row in rows)
    assert by_id["r5"]["text"] is None
    assert by_id["r5"]["error"]["class"] == "InvalidParameterError"
    assert "neither 'prompt' nor 'messages'" in by_id["r5"]["error"]["message"]
    answered = {i: by_id[f"r{i}"]["text"] for i in range(40) if i != 5}
    assert answered == {i: f"echo: w{i}" for i in range(40) if i != 5}


def test_the_processor_adds_parsed_with_a_response_format(
    ray_instance: Any, openai_server: FakeOpenAIServer
) -> None:
    model = model_name()
    openai_server.configure(model, reply='{"city": "Paris", "people": 3}')
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "people": {"type": "integer"}},
        "required": ["city", "people"],
    }
    rows = [{"id": "a", "prompt": "where?"}, {"id": "b", "prompt": "!status=400 no"}]
    process = mr.build_processor(
        f"openai:{model}", response_format=schema, **client_kwargs(openai_server)
    )

    out = sorted(process(ray_instance.data.from_items(rows)).take_all(), key=lambda r: r["id"])

    assert [row["parsed"] for row in out] == [{"city": "Paris", "people": 3}, None]
    assert out[1]["error"]["status_code"] == 400


def test_a_run_on_ray_gives_parsed_generations_with_a_response_format(
    ray_instance: Any, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model = model_name()
    openai_server.configure(model, reply='{"city": "Paris"}')
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    kwargs = {**client_kwargs(openai_server), "response_format": schema}

    results = mr.run(f"openai:{model}", ["a", "b"], results_db=tmp_path / "r.db", **kwargs)

    assert [r.parsed for r in results] == [{"city": "Paris"}] * 2


def test_the_processor_adds_parsed_when_the_alias_file_sets_a_response_format(
    ray_instance: Any, openai_server: FakeOpenAIServer, user_aliases: Callable[[str], Path]
) -> None:
    import pyarrow

    model = model_name()
    openai_server.configure(model, reply='{"city": "Paris"}')
    user_aliases(
        f"""
        [aliases."geo"]
        provider = "openai"
        model_id = "{model}"

        [aliases."geo".defaults]
        api_base = "{openai_server.url}"
        api_key = "{SERVER_KEY}"
        response_format = {{type = "object", properties = {{city = {{type = "string"}}}}}}
        """
    )
    processor = mr.ModelProcessor("geo")  # in this process: the alias file is here

    out = processor(pyarrow.Table.from_pylist([{"prompt": "where?"}])).to_pylist()

    assert out[0]["parsed"] == {"city": "Paris"}
