"""Run inside an xllamacpp environment: greedy tokens, a chat reply and a tokenization of one GGUF.

argv: a JSON request {"gguf", "prompt_ids", "new_tokens", "messages", "text"}; prints one JSON line.
"""

import json
import sys
import urllib.request

from xllamacpp import CommonParams, Server


def post(server: Server, route: str, body: dict) -> dict:
    """A request to the server's own HTTP routes (what the Python handlers do not offer)."""
    data = json.dumps(body).encode()
    ask = urllib.request.Request(
        server.listening_address + route, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(ask, timeout=30) as answer:
        return json.loads(answer.read())


def main() -> None:
    request = json.loads(sys.argv[1])
    params = CommonParams()
    params.model.path = request["gguf"]
    params.n_ctx = 512
    params.n_parallel = 1
    server = Server(params)
    completion = server.handle_completions(
        {"prompt": request["prompt_ids"], "n_predict": request["new_tokens"], "temperature": 0, "n_probs": 2,
         "ignore_eos": True}
    )  # fmt: skip
    steps = completion["choices"][0]["logprobs"]["content"]
    chat = server.handle_chat_completions({"messages": request["messages"], "max_tokens": 8, "temperature": 0})
    chat_prompt = post(server, "/apply-template", {"messages": request["messages"]})["prompt"]
    result = {
        "tokens": [s["id"] for s in steps],
        "margins": [s["top_logprobs"][0]["logprob"] - s["top_logprobs"][1]["logprob"] for s in steps],
        "chat": chat["choices"][0]["message"]["content"],
        "chat_prompt_tokens": chat["usage"]["prompt_tokens"],
        "chat_prompt_ids": post(server, "/tokenize", {"content": chat_prompt, "parse_special": True})["tokens"],
        "text_ids": post(server, "/tokenize", {"content": request["text"], "parse_special": True})["tokens"],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
