"""Greedy decoding of the reference model in-process (transformers): the accuracy check's reference.

The reference is the model the server should match: the source, or for a quantized recipe the
fake-quantized model, whose quantizers are restored here whichever process loads it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engineforge.errors import UserError
from engineforge.quantize.fakequant import restore_quantizers_on_load


@dataclass
class ReferenceOutput:
    token_ids: list[int]
    text: str
    logprobs: list[float]


class Reference:
    """The reference model and its tokenizer, loaded once; `generate` decodes one prompt greedily."""

    def __init__(self, model_path: str, dtype: str = "float32", device: str = "cpu", trust_remote_code: bool = False):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        restore_quantizers_on_load(model_path)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
            self.model = AutoModelForCausalLM.from_pretrained(
                model_path,
                dtype="auto" if dtype == "auto" else getattr(torch, dtype),
                trust_remote_code=trust_remote_code,
            ).to(device)
        except (OSError, ValueError) as error:
            raise UserError(f"accuracy reference model {model_path!r}: {error}; give a model directory or hub id") from error
        self.model.eval()
        self.device = device

    def prompt_ids(self, prompt: str, api: Literal["completions", "chat"]) -> list[int]:
        """Token ids the server sees: the raw prompt, or the chat template applied to one user turn."""
        if api == "chat":
            return list(
                self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True, return_dict=False
                )
            )
        return self.tokenizer(prompt)["input_ids"]

    def generate(self, prompt: str, max_tokens: int, api: Literal["completions", "chat"] = "completions") -> ReferenceOutput:
        import torch

        input_ids = torch.tensor([self.prompt_ids(prompt, api)], device=self.device)
        with torch.no_grad():
            out = self.model.generate(
                input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=max_tokens,
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
            )
        new_ids = out.sequences[0, input_ids.shape[1]:].tolist()
        logprobs = [
            float(torch.log_softmax(scores[0].float(), dim=-1)[token]) for scores, token in zip(out.scores, new_ids)
        ]
        return ReferenceOutput(new_ids, self.decode(new_ids), logprobs)

    def decode(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode(token_ids, skip_special_tokens=True)

    def encode_output(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]
