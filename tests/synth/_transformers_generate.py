"""Run inside an environment with transformers: load each HF directory and decode greedily (float32).

argv: a JSON request {"dirs": {family: path}, "prompt_ids", "new_tokens", "messages", "text"};
prints one JSON object, family -> result or {"error": ...}.
"""

import json
import sys
import traceback


def run(path: str, request: dict) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, info = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, output_loading_info=True)
    tokenizer = AutoTokenizer.from_pretrained(path)
    prompt = torch.tensor([request["prompt_ids"]])
    out = model.generate(
        prompt, max_new_tokens=request["new_tokens"], do_sample=False, eos_token_id=None,
        output_scores=True, return_dict_in_generate=True,
    )  # fmt: skip
    margins = []
    for scores in out.scores:
        top = torch.topk(torch.log_softmax(scores[0].float(), -1), 2).values
        margins.append(float(top[0] - top[1]))
    chat_ids = tokenizer.apply_chat_template(request["messages"], add_generation_prompt=True, tokenize=False)
    chat_ids = tokenizer(chat_ids, add_special_tokens=False, return_tensors="pt").input_ids
    reply = model.generate(chat_ids, max_new_tokens=8, do_sample=False)[0, chat_ids.shape[1] :]
    vocab = [tokenizer.decode([i]) for i in range(model.config.vocab_size)]
    text_ids = tokenizer(request["text"], add_special_tokens=False).input_ids
    return {
        "loading": {k: [str(x) for x in v] for k, v in info.items()},
        "tokens": out.sequences[0, len(request["prompt_ids"]) :].tolist(),
        "margins": margins,
        "chat": tokenizer.decode(reply, skip_special_tokens=True),
        "chat_prompt_tokens": chat_ids.shape[1],
        "chat_prompt_ids": chat_ids[0].tolist(),
        "text_ids": text_ids,
        "text_round_trip": tokenizer.decode(text_ids),
        "undecodable": [i for i, t in enumerate(vocab) if "\ufffd" in t],
    }


def main() -> None:
    request = json.loads(sys.argv[1])
    results = {}
    for family, path in request["dirs"].items():
        try:
            results[family] = run(path, request)
        except Exception:
            results[family] = {"error": traceback.format_exc()}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
