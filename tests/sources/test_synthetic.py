from engineforge.recipe.schema import SyntheticModel
from engineforge.artifacts.store import file_digests
from engineforge.sources.synthetic import write_synthetic_model


def test_same_spec_gives_identical_files(tmp_path, tiny_model_dir):
    again = write_synthetic_model(SyntheticModel(), tmp_path / "again")
    assert file_digests(again) == file_digests(tiny_model_dir)


def test_model_loads_generates_and_has_a_chat_template(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    inputs = tokenizer("The capital of France is", return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=4, do_sample=False, min_new_tokens=4)
    assert output.shape[1] == inputs["input_ids"].shape[1] + 4
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert chat.endswith("<|assistant|>\n")


def test_sharded_checkpoint_has_an_index(tmp_path):
    out = write_synthetic_model(SyntheticModel(max_shard_size="100KB", seed=3), tmp_path / "m")
    index = (out / "model.safetensors.index.json").read_text()
    assert len(list(out.glob("model-*.safetensors"))) > 1 and "weight_map" in index
