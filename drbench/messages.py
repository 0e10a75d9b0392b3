"""The one catalogue of the sentences a run says on stderr (warnings and notes), in every language.

A ``Message`` is a ``str`` whose value is its English text, so everything that stores, compares
or redacts warnings (results.py, summary.json, tests) keeps working on plain English; the
reporter alone calls ``render(message, lang)`` to print it in ``--lang``.  A parameter may be a
``Message`` itself (where: "round 2 at concurrency 5"), rendered in the same language.  Adding a
sentence is one ``CATALOGUE`` entry with an ``en`` and a ``zh`` template; no ``if lang`` elsewhere.
Pure: no I/O, no printing.
"""

from __future__ import annotations

import math
from typing import Any

from drbench.levels import Level, format_rate
from drbench.records import Lang

__all__ = ["CATALOGUE", "Message", "level_words", "render", "round_where"]

CATALOGUE: dict[str, dict[Lang, str]] = {
    # where a warning happened, and what a level is called
    "where": {"en": "round {round} at {level}", "zh": "{level} 的第 {round} 轮"},
    "level_concurrency": {"en": "concurrency {c}", "zh": "并发 {c}"},
    "level_rate": {"en": "rate {rate} req/s", "zh": "请求速率 {rate} req/s"},
    "level_rate_inf": {"en": "rate inf (all at once)", "zh": "请求速率 inf (一次全部发出)"},
    "level_trace": {"en": "trace at {speed}x speed", "zh": "轨迹回放 {speed} 倍速"},
    "level_cap": {"en": "{level} (at most {cap} in flight)", "zh": "{level} (最多 {cap} 个并发)"},
    # sanity.py: the cache question
    "join1": {"en": "{a}", "zh": "{a}"},
    "join2": {"en": "{a}, {b}", "zh": "{a}, {b}"},
    "share_usage": {
        "en": "{v}% of prompt tokens cached (usage)",
        "zh": "{v}% 的输入 tokens 命中缓存 (usage)",
    },
    "share_server": {"en": "{v}% server hit rate", "zh": "服务端命中率 {v}%"},
    "not_cold": {
        "en": "{where} was not cold: {shares}. Likely cause: {cause}",
        "zh": "{where} 不是冷启动: {shares}。可能原因: {cause}",
    },
    "cause_cold_none": {
        "en": "--cold-start none sends prompts the server may have cached before (an earlier "
        "level or run); use --cold-start nonce (the default) or --cold-start reset",
        "zh": "--cold-start none 发送的提示可能已被服务端缓存 (来自之前的并发级别或运行); "
        "请使用 --cold-start nonce (默认) 或 --cold-start reset",
    },
    "cause_cold_reset": {
        "en": "the cache reset did not empty the cache, or another client shares the server; "
        "check --cache-reset-url, or use --cold-start nonce",
        "zh": "缓存重置没有清空缓存, 或有其他客户端共用该服务; 请检查 --cache-reset-url, "
        "或使用 --cold-start nonce",
    },
    "cause_cold_nonce": {
        "en": "the chat template's header before the nonce is cached, or another client "
        "shares the server; compare the cached tokens per prompt with the template's length",
        "zh": "nonce 之前的对话模板头部被缓存, 或有其他客户端共用该服务; "
        "请将每个提示命中的缓存 tokens 与模板长度比较",
    },
    "not_warm": {
        "en": "{where} reused almost nothing ({shares}), so it does not measure what the cache "
        "buys. Likely cause: {cause}",
        "zh": "{where} 几乎没有复用缓存 ({shares}), 因此测不出缓存带来的收益。可能原因: {cause}",
    },
    "cause_short": {
        "en": "the prompts average {mean} tokens, shorter than the server's cache block of "
        "{block} tokens (only whole blocks are cached): use longer prompts",
        "zh": "提示平均 {mean} tokens, 短于服务端的缓存块 {block} tokens (只缓存完整的块): "
        "请使用更长的提示",
    },
    "cause_capacity": {
        "en": "the round's prompts total {total} tokens, more than the server's cache holds "
        "({capacity} tokens), so each is evicted before it is reused: use fewer or shorter "
        "prompts",
        "zh": "本轮提示共 {total} tokens, 超过服务端缓存容量 ({capacity} tokens), "
        "每个提示在复用前就被逐出: 请使用更少或更短的提示",
    },
    "cause_off": {
        "en": "{off}, or the cache is too small for the round's prompts (evicted before reuse)",
        "zh": "{off}, 或缓存容量不足以容纳本轮提示 (复用前被逐出)",
    },
    "below_offered": {
        "en": "{where} reused less than half of what its prompts offered ({shares}; offered "
        "prefix share {offer}%). Likely cause: {off}, the cache holds less than the round's "
        "working set (evicted before reuse), a router spreads the shared prefixes over "
        "replicas, or requests sharing a prefix ran together before it was cached",
        "zh": "{where} 复用的缓存不到其提示可复用部分的一半 ({shares}; 可复用前缀占比 "
        "{offer}%)。可能原因: {off}, 缓存容量小于本轮工作集 (复用前被逐出), "
        "路由把共享前缀分散到多个副本, 或共享前缀的请求在缓存前同时运行",
    },
    "below_offered_capacity": {
        "en": "{where} reused less than half of what its prompts offered ({shares}; offered "
        "prefix share {offer}%, expected {expected}% from an LRU of {capacity} tokens). Likely "
        "cause: the cache holds less than the round's working set, as the expected hit rate "
        "says (evicted before reuse): a bigger cache, fewer or shorter prompts, or a grouped "
        "order would reuse more",
        "zh": "{where} 复用的缓存不到其提示可复用部分的一半 ({shares}; 可复用前缀占比 {offer}%, "
        "按 {capacity} tokens 的 LRU 预期命中 {expected}%)。可能原因: 缓存容量小于本轮工作集, "
        "与预期命中率一致 (复用前被逐出): 更大的缓存、更少或更短的提示、或按组发送会复用更多",
    },
    "below_offered_far": {
        "en": "{where} reused less than half of what its prompts offered ({shares}; offered "
        "prefix share {offer}%, expected {expected}% from an LRU of {capacity} tokens), far "
        "below what its capacity allows. Likely cause: {off}, an eviction policy that keeps "
        "less than LRU, a router spreads the shared prefixes over replicas, or requests sharing "
        "a prefix ran together before it was cached",
        "zh": "{where} 复用的缓存不到其提示可复用部分的一半 ({shares}; 可复用前缀占比 {offer}%, "
        "按 {capacity} tokens 的 LRU 预期命中 {expected}%), 远低于其容量所允许的。可能原因: "
        "{off}, 淘汰策略保留的少于 LRU, 路由把共享前缀分散到多个副本, 或共享前缀的请求在缓存前"
        "同时运行",
    },
    "implausible_usage": {
        "en": "{where}: the server's usage.prompt_tokens (median {told}) is {ratio}x the "
        "estimate from the prompts' text (median {guessed}): its usage looks implausible, so "
        "token counts and cached shares are suspect",
        "zh": "{where}: 服务端的 usage.prompt_tokens (中位数 {told}) 是根据提示文本估算值 "
        "(中位数 {guessed}) 的 {ratio} 倍: usage 不可信, token 数与缓存占比存疑",
    },
    "ignored_limits": {
        "en": "{where}: {over} of {ok} answers had more tokens than max_tokens asked (e.g. "
        "{got} > {asked}): the server ignores max_tokens, so output lengths and throughput are "
        "not the configured ones",
        "zh": "{where}: {ok} 个回答中有 {over} 个超过 max_tokens (例如 {got} > {asked}): "
        "服务端忽略了 max_tokens, 输出长度与吞吐量不是配置的值",
    },
    "estimated_basis": {
        "en": " (token counts estimated from the text: the server sends no usage)",
        "zh": " (token 数由文本估算: 服务端未返回 usage)",
    },
    "tokens_per_event": {
        "en": "{where}: the server streamed {v} tokens per event{basis}: ITL is the gap between "
        "events of several tokens, TPOT stays per token",
        "zh": "{where}: 服务端每个事件推送 {v} 个 tokens{basis}: ITL 是多 token 事件之间的间隔, "
        "TPOT 仍按 token 计",
    },
    "events_per_token": {
        "en": "{where}: the server streamed {v} events per token{basis} (pieces of tokens, e.g. "
        "one character per event): ITL is per event, not per token",
        "zh": "{where}: 服务端每个 token 推送 {v} 个事件{basis} (token 的片段, 例如每个事件一个"
        "字符): ITL 按事件计, 不按 token 计",
    },
    # sanity.py: the load
    "truncated": {
        "en": "{where} was truncated by --max-round-duration: {unsent} of {total} requests "
        "were never sent; its figures cover the requests sent",
        "zh": "{where} 被 --max-round-duration 截断: {total} 个请求中有 {unsent} 个未发送; "
        "其指标只统计已发送的请求",
    },
    "lag_figures": {
        "en": "send lag p50 {p50} ms, p99 {p99} ms",
        "zh": "发送延迟 p50 {p50} ms, p99 {p99} ms",
    },
    "capped": {
        "en": "{where}: requests waited for room under --max-concurrency {cap} ({figures}): the "
        "server did not keep up with the schedule at that cap (queueing in the client, by "
        "design)",
        "zh": "{where}: 请求在 --max-concurrency {cap} 之下排队等待 ({figures}): 在该上限下服务端"
        "跟不上计划 (客户端内排队, 符合设计)",
    },
    "fell_behind": {
        "en": "{where}: the client fell behind its schedule ({figures}), so the server got less "
        "than the schedule asked: lower the rate (or --speedup), or send from more processes "
        "(--workers)",
        "zh": "{where}: 客户端落后于发送计划 ({figures}), 服务端收到的负载低于计划: "
        "请降低速率 (或 --speedup), 或用更多进程发送 (--workers)",
    },
    "no_usage_tokenizer": {
        "en": "the server sends no usage: token counts come from --tokenizer",
        "zh": "服务端未返回 usage: token 数来自 --tokenizer",
    },
    "no_usage": {
        "en": "the server sends no usage (stream_options.include_usage): token counts are "
        "estimated from the text (about 4 characters per token); pass --tokenizer PATH for "
        "exact counts",
        "zh": "服务端未返回 usage (stream_options.include_usage): token 数由文本估算 "
        "(约每 4 个字符一个 token); 传入 --tokenizer PATH 可得到精确计数",
    },
    # selfcheck.py
    "process_main": {"en": "the main process", "zh": "主进程"},
    "process_worker": {"en": "worker {n}", "zh": "工作进程 {n}"},
    "process_actor": {"en": "Ray actor {n} on host {host}", "zh": "主机 {host} 上的 Ray actor {n}"},
    "ray_host_limit": {
        "en": "{line}; host {host} limited the load: add hosts (--ray-hosts) or actors per host "
        "(--workers {n}) where there are free cores",
        "zh": "{line}; 主机 {host} 限制了负载: 请在有空闲核的地方增加主机 (--ray-hosts) "
        "或每台主机的 actor 数 (--workers {n})",
    },
    "ray_driver_limit": {
        "en": "{line}; this process dispatches every request to the Ray actors: run it on a "
        "quieter or larger machine (the head node's cores are shared with Ray's own processes)",
        "zh": "{line}; 本进程负责把每个请求分派给 Ray actor: 请在更空闲或更大的机器上运行它 "
        "(头节点的核与 Ray 自身进程共享)",
    },
    "lagged": {
        "en": "its event loop lagged {lag} ms at p99 (limit {limit} ms)",
        "zh": "其事件循环 p99 延迟 {lag} ms (上限 {limit} ms)",
    },
    "cpu_used": {
        "en": "it used {cpu}% of a core (limit {limit}%)",
        "zh": "占用一个核的 {cpu}% (上限 {limit}%)",
    },
    "and": {"en": " and ", "zh": " 且 "},
    "join_and": {"en": "{a}{sep}{b}", "zh": "{a}{sep}{b}"},
    "client_limit": {
        "en": "{where}: the client may have limited this round, not the server: {name}: {figures}{several}",
        "zh": "{where}: 限制本轮的可能是客户端而不是服务端: {name}: {figures}{several}",
    },
    "several_over": {
        "en": " ({over} of {n} processes over a limit)",
        "zh": " ({n} 个进程中有 {over} 个超限)",
    },
    "busy_elsewhere": {
        "en": "{line} while it used only {cpu}% of a core: something else held the CPU (other "
        "processes on this machine, or a blocking call), so the round's timings include that "
        "delay; rerun on a quieter machine (more --workers would not help)",
        "zh": "{line}, 而它只占用一个核的 {cpu}%: CPU 被其他东西占用 (本机其他进程或阻塞调用), "
        "本轮计时包含该延迟; 请在更空闲的机器上重跑 (增加 --workers 无济于事)",
    },
    "more_workers": {
        "en": "{line}; give --workers {n} to spread the client over more cores",
        "zh": "{line}; 请给出 --workers {n}, 把客户端分散到更多核上",
    },
    "single_core": {"en": "this machine has a single core", "zh": "本机只有一个核"},
    "all_cores": {
        "en": "--workers {workers} already uses all {cores} cores of this machine",
        "zh": "--workers {workers} 已用满本机全部 {cores} 个核",
    },
    "machine_limit": {
        "en": "{line}; {machine}, so the client machine is the limit: run the client on a larger "
        "machine or lower the load",
        "zh": "{line}; {machine}, 瓶颈是客户端机器: 请在更大的机器上运行客户端或降低负载",
    },
    # runner.py
    "ray_started": {
        "en": "Ray: {actors} actor(s) on {hosts} host(s) ({where}); {clocks}",
        "zh": "Ray: {hosts} 台主机上共 {actors} 个 actor ({where}); {clocks}",
    },
    "ray_clock_shared": {
        "en": "every actor shares this machine's clock",
        "zh": "所有 actor 与本机共用时钟",
    },
    "ray_clock_error": {
        "en": "clock offsets measured, error at most {ms} ms",
        "zh": "已测量时钟偏移, 误差不超过 {ms} ms",
    },
    "halted": {
        "en": "{where}: stopped early: {why} (--on-lost-worker stop); {unsent} request(s) not sent",
        "zh": "{where}: 提前停止: {why} (--on-lost-worker stop); {unsent} 个请求未发送",
    },
    "halted_run": {
        "en": "the run stopped: {why} (--on-lost-worker stop); the rounds before, and this "
        "round's finished requests, are reported (give --on-lost-worker continue to run on)",
        "zh": "运行已停止: {why} (--on-lost-worker stop); 之前的各轮及本轮已完成的请求已报告 "
        "(给出 --on-lost-worker continue 可继续运行)",
    },
    "fewer_prompts": {
        "en": "concurrency {c} with {n} prompts keeps at most {n} requests in flight: the level "
        "is really concurrency {n} (give --num-samples {c} or more to load it)",
        "zh": "并发 {c} 而只有 {n} 个提示, 最多只有 {n} 个请求在途: 该级别实际是并发 {n} "
        "(给出 --num-samples {c} 或更多才能压满)",
    },
    "not_continued": {
        "en": "{failed} prompt(s) failed in round {prev}; round {rnd} resent their previous "
        "request instead of continuing the conversation",
        "zh": "第 {prev} 轮有 {failed} 个提示失败; 第 {rnd} 轮重发了它们上一轮的请求, "
        "而没有继续对话",
    },
    # gates.py
    "gate_no_success": {
        "en": "no request succeeded in {where} ({detail}): exit {status}",
        "zh": "{where} 没有成功的请求 ({detail}): 退出码 {status}",
    },
    "gate_failed": {
        "en": "{flag} {threshold}% failed: {where} had {value}% {what} ({detail}): exit {status}",
        "zh": "{flag} {threshold}% 未通过: {where} 的{what}为 {value}% ({detail}): 退出码 {status}",
    },
    "gate_percentile": {
        "en": "--fail-on-slo: {where} missed its SLO bound {bound} <= {threshold} ms (it was "
        "{value} ms): exit {status}",
        "zh": "--fail-on-slo: {where} 未满足 SLO 界限 {bound} <= {threshold} ms (实际 {value} ms): "
        "退出码 {status}",
    },
    "gate_errors": {"en": "failed requests", "zh": "失败请求占比"},
    "gate_goodput": {"en": "goodput", "zh": "有效吞吐"},
    "gate_failed_detail": {
        "en": "{failed} of {total} failed: {kinds}",
        "zh": "{total} 个中 {failed} 个失败: {kinds}",
    },
    "gate_of": {"en": "{n} of {total}", "zh": "{total} 个中 {n} 个"},
    "gate_good": {"en": "{good} of {total} good", "zh": "{total} 个中 {good} 个达标"},
    # benchmark.py
    "too_long": {
        "en": "{over} of {n} prompts need more than the model's max_model_len {max_len} (prompt "
        "tokens {how} + max_tokens): {shown}; they will likely fail with HTTP 400: lower "
        "--max-tokens or leave them out",
        "zh": "{n} 个提示中有 {over} 个超过模型的 max_model_len {max_len} (输入 tokens {how} + "
        "max_tokens): {shown}; 它们很可能以 HTTP 400 失败: 请调低 --max-tokens 或去掉这些提示",
    },
    "counted_tokenizer": {"en": "counted by --tokenizer", "zh": "由 --tokenizer 计数"},
    "counted_estimated": {"en": "estimated", "zh": "为估算值"},
    "no_plotly_html": {
        "en": "report.html has no charts: pip install plotly to get them",
        "zh": "report.html 没有图表: pip install plotly 后即可生成",
    },
    # client.py: the preflight and the cache reset
    "preflight_retry": {
        "en": "preflight: HTTP {status} with Retry-After {after} s; waited {wait} s{capped} "
        "before trying again",
        "zh": "预检: HTTP {status}, Retry-After {after} 秒; 等待 {wait} 秒{capped}后重试",
    },
    "retry_capped": {"en": " (capped)", "zh": " (已封顶)"},
    "reset_http": {
        "en": "cache reset {url} answered HTTP {status}: {error}",
        "zh": "缓存重置 {url} 返回 HTTP {status}: {error}",
    },
    "reset_failed": {
        "en": "cache reset {url} failed: {why}",
        "zh": "缓存重置 {url} 失败: {why}",
    },
    "reset_not_cold": {
        "en": "{problem} (round 1 may not be cold)",
        "zh": "{problem} (第 1 轮可能不是冷启动)",
    },
    # prometheus/: the server metrics
    "scrape_http": {"en": "HTTP {status}{reason}", "zh": "HTTP {status}{reason}"},
    "scrape_timeout": {"en": "no answer within {s} s", "zh": "{s} 秒内无应答"},
    "scrape_connect": {"en": "cannot connect: {why}", "zh": "无法连接: {why}"},
    "scrape_not_utf8": {
        "en": "not Prometheus text (not UTF-8)",
        "zh": "不是 Prometheus 文本 (非 UTF-8)",
    },
    "scrape_too_big": {
        "en": "metrics page larger than {size}; not read further",
        "zh": "指标页面大于 {size}; 不再继续读取",
    },
    "metrics_down": {
        "en": "server metrics: {url} unavailable ({reason}); its figures are marked missing and "
        "the run goes on. Check --prometheus-url.",
        "zh": "服务端指标: {url} 不可用 ({reason}); 其指标记为缺失, 运行继续。"
        "请检查 --prometheus-url。",
    },
    "metrics_no_preset": {
        "en": "server metrics: {url} exposes none of the known {known} metrics; name the ones to "
        "read with --prometheus-metrics.",
        "zh": "服务端指标: {url} 没有任何已知的 {known} 指标; 请用 --prometheus-metrics "
        "指定要读取的指标。",
    },
    "known_generic": {
        "en": "vLLM, SGLang, LMCache or TGI",
        "zh": "vLLM、SGLang、LMCache 或 TGI",
    },
    "metrics_no_match": {
        "en": "server metrics: {url} exposes no metric matching --prometheus-metrics {sel}; it is "
        "reported as missing.",
        "zh": "服务端指标: {url} 没有与 --prometheus-metrics {sel} 匹配的指标; 该项记为缺失。",
    },
    "profile_note": {
        "en": "server metrics: {title}: {note}",
        "zh": "服务端指标: {title}: {note}",
    },
    "flush_lag": {
        "en": "server metrics: {who} publishes its counters about every {flush} s, so its "
        "per-round figures can lag the round by that much; give --round-pause {flush} or more.",
        "zh": "服务端指标: {who} 大约每 {flush} 秒发布一次计数器, 因此每轮指标可能滞后同样久; "
        "请给出 --round-pause {flush} 或更大的值。",
    },
    "profile_mismatch": {
        "en": "server metrics: --server-profile {choice} but the endpoint exposes {detected} "
        "metrics; its {title} hit rates may be missing (use --server-profile auto or {found})",
        "zh": "服务端指标: 指定了 --server-profile {choice}, 但该端点提供的是 {detected} 指标; "
        "{title} 的命中率可能缺失 (请使用 --server-profile auto 或 {found})",
    },
    "cache_off_vllm": {
        "en": "prefix caching is off (vLLM: --enable-prefix-caching)",
        "zh": "前缀缓存未开启 (vLLM: --enable-prefix-caching)",
    },
    "cache_off_sglang": {
        "en": "prefix caching is off (SGLang: the radix cache is disabled, --disable-radix-cache)",
        "zh": "前缀缓存未开启 (SGLang: radix cache 被禁用, --disable-radix-cache)",
    },
    "cache_off_lmcache": {
        "en": "LMCache stored nothing reusable (check vLLM's --kv-transfer-config; LMCache "
        "stores whole chunks, LMCACHE_CHUNK_SIZE)",
        "zh": "LMCache 没有存下可复用的内容 (请检查 vLLM 的 --kv-transfer-config; LMCache "
        "只存完整的块, LMCACHE_CHUNK_SIZE)",
    },
    "cache_off_generic": {
        "en": "prefix caching is off (vLLM: --enable-prefix-caching; SGLang: the radix cache is "
        "disabled)",
        "zh": "前缀缓存未开启 (vLLM: --enable-prefix-caching; SGLang: radix cache 被禁用)",
    },
    "cache_off_either": {"en": "{a}, or {b}", "zh": "{a}, 或{b}"},
    # oracle.py
    "no_capacity": {
        "en": "not computed: the server's cache capacity is unknown (give --prometheus-url of a "
        "vLLM server, whose vllm:cache_config_info has num_gpu_blocks, or "
        "--cache-capacity-tokens N)",
        "zh": "未计算: 服务端的缓存容量未知 (请给出 vLLM 服务的 --prometheus-url, 其 "
        "vllm:cache_config_info 含 num_gpu_blocks; 或给出 --cache-capacity-tokens N)",
    },
    # report/sweep_files.py: --sweep and --slo-search
    "sweep_value": {
        "en": "sweep {name}={value} ({index} of {total}): results in {dir}",
        "zh": "扫描 {name}={value} (第 {index} 个, 共 {total} 个): 结果目录 {dir}",
    },
    "sweep_nothing": {
        "en": "sweep: no value finished a round; no sweep files written",
        "zh": "扫描: 没有任何取值完成一轮; 未写入扫描文件",
    },
    "sweep_stopped": {
        "en": "sweep stopped ({why}); the values that finished are in {out}",
        "zh": "扫描已停止 ({why}); 已完成的取值在 {out}",
    },
    "sweep_written": {"en": "sweep written to {path}", "zh": "扫描结果已写入 {path}"},
    "sweep_plot_skipped": {
        "en": "{file} skipped: pip install matplotlib to get it",
        "zh": "未生成 {file}: pip install matplotlib 后即可生成",
    },
    "stopped_interrupted": {"en": "interrupted", "zh": "被中断"},
    "sweep_at": {"en": "at {level}: ", "zh": "{level}: "},
    "sweep_no_rate": {
        "en": "sweep: {at}no measured hit rate to compare with {threshold}: the server's needs "
        "--prometheus-url, and the responses' usage had no cached_tokens",
        "zh": "扫描: {at}没有可与 {threshold} 比较的实测命中率: 服务端命中率需要 "
        "--prometheus-url, 而回答的 usage 中没有 cached_tokens",
    },
    "sweep_what": {"en": "the round {round} {metric}", "zh": "第 {round} 轮的{metric}"},
    "metric_server_hit_rate": {"en": "server hit rate", "zh": "服务端命中率"},
    "metric_cached_share": {"en": "usage cached share", "zh": "usage 缓存占比"},
    "sweep_units": {
        "en": "; about {n} {unit} of working set",
        "zh": "; 工作集约 {n} {unit}",
    },
    "sweep_crossed": {
        "en": "sweep: {at}{what} falls below {threshold} at {name}={value} (between {lo} and "
        "{hi}{units})",
        "zh": "扫描: {at}{what}在 {name}={value} 处低于 {threshold} (介于 {lo} 与 {hi} 之间{units})",
    },
    "sweep_below_first": {
        "en": "sweep: {at}{what} is below {threshold} already at {name}={value}, the lowest "
        "value: sweep lower values",
        "zh": "扫描: {at}{what}在最小取值 {name}={value} 处已低于 {threshold}: 请扫描更小的取值",
    },
    "sweep_not_reached": {
        "en": "sweep: {at}{what} stays at or above {threshold} up to {name}={top}: not reached",
        "zh": "扫描: {at}{what}直到 {name}={top} 都不低于 {threshold}: 未到达",
    },
    "search_what": {"en": "round {round} TTFT p{p}", "zh": "第 {round} 轮 TTFT p{p}"},
    "search_failed": {"en": ", {n} failed", "zh": ", 失败 {n}"},
    "search_within": {"en": "within", "zh": "达标"},
    "search_over": {"en": "over", "zh": "超限"},
    "search_probe": {
        "en": "slo-search users={users} at concurrency {users}: {what} {figure}{failed} (bound "
        "{bound} ms): {verdict}",
        "zh": "slo-search users={users} (并发 {users}): {what} {figure}{failed} (上限 {bound} ms): "
        "{verdict}",
    },
    "search_bound": {
        "en": "round {round} TTFT p{p} within {bound} ms",
        "zh": "第 {round} 轮 TTFT p{p} 不超过 {bound} ms",
    },
    "search_none": {
        "en": "slo-search: not even 1 session keeps {what}",
        "zh": "slo-search: 连 1 个会话都做不到{what}",
    },
    "search_most": {
        "en": "slo-search: {best} concurrent sessions keep {what}, the most probed (raise max= "
        "to look further)",
        "zh": "slo-search: {best} 个并发会话可保持{what}, 这是探测的最大值 (调高 max= 可继续探测)",
    },
    "search_answer": {
        "en": "slo-search: at most {best} concurrent sessions keep {what} ({next} do not)",
        "zh": "slo-search: 最多 {best} 个并发会话可保持{what} ({next} 个则不能)",
    },
    "search_stopped": {
        "en": "slo-search stopped ({why}) before an answer; the probes are in {out}",
        "zh": "slo-search 在得出答案前停止 ({why}); 探测结果在 {out}",
    },
    "search_nothing": {
        "en": "slo-search: no probe finished; nothing written",
        "zh": "slo-search: 没有完成的探测; 未写入任何文件",
    },
    # offline.py (--report, --compare) and cli.py (--demo, --write-workload)
    "no_charts_in": {
        "en": "no charts in {path}: pip install plotly to get them (the tables are there)",
        "zh": "{path} 中没有图表: pip install plotly 后即可生成 (表格都在)",
    },
    "report_wrote": {
        "en": "wrote {path} (summary.json schema {schema}, {n} requests)",
        "zh": "已写入 {path} (summary.json 格式版本 {schema}, {n} 个请求)",
    },
    "wrote": {"en": "wrote {paths}", "zh": "已写入 {paths}"},
    "regression_gate": {
        "en": "--fail-on-regression {gate}: {where}: B worse by {w} ({ci}): {verdict}",
        "zh": "--fail-on-regression {gate}: {where}: B 比 A 差 {w} ({ci}): {verdict}",
    },
    "regression_ci": {"en": "95% CI {lo}% .. {hi}%", "zh": "95% 置信区间 {lo}% .. {hi}%"},
    "regression_no_ci": {"en": "no CI", "zh": "无置信区间"},
    "regression_failed": {"en": "FAILED", "zh": "未通过"},
    "regression_ok": {"en": "ok", "zh": "通过"},
    "regressions_failed": {
        "en": "{n} regression gate(s) failed: exit {status}",
        "zh": "{n} 个回归门限未通过: 退出码 {status}",
    },
    "regressions_passed": {
        "en": "every regression gate passed ({n} checks)",
        "zh": "所有回归门限均通过 ({n} 项检查)",
    },
    "demo": {
        "en": "demo against the bundled mock server at {url}",
        "zh": "演示: 目标为自带的模拟服务 {url}",
    },
    "workload_wrote": {"en": "wrote {file}: {what}", "zh": "已写入 {file}: {what}"},
    "workload_hint": {
        "en": "as --dataset, run it with {hints} to keep the workload",
        "zh": "作为 --dataset 使用时, 请加上 {hints} 以保持该负载",
    },
    # report/live.py: the run's own lines
    "warning": {"en": "warning: {text}", "zh": "警告: {text}"},
    "workload": {"en": "workload {name}", "zh": "负载 {name}"},
    "run_started": {
        "en": "{prompts} prompts x {rounds} rounds at {levels} against {url} (model {model}, "
        "cold start: {cold}); results in {out}",
        "zh": "{prompts} 个提示 x {rounds} 轮, {levels}, 目标 {url} (模型 {model}, 冷启动方式: "
        "{cold}); 结果目录 {out}",
    },
    "levels_concurrency": {"en": "concurrency {values}", "zh": "并发 {values}"},
    "levels_rate": {
        "en": "request rate {values} req/s (burstiness {b}{cap})",
        "zh": "请求速率 {values} req/s (突发度 {b}{cap})",
    },
    "levels_trace": {
        "en": "the records' timestamps at {values} speed{cap}",
        "zh": "按记录时间戳 {values} 倍速{cap}",
    },
    "levels_cap": {"en": ", at most {cap} in flight", "zh": ", 最多 {cap} 个并发"},
    "round_failed": {
        "en": "{where}: {failed} of {total} requests failed; most often ({n}x) {kind}: {message}",
        "zh": "{where}: {total} 个请求中有 {failed} 个失败; 最常见 ({n} 次) {kind}: {message}",
    },
    "round_done": {
        "en": "{where} done: {ok}/{total} ok, {failed} failed, {elapsed} s, {tps} output tokens/s",
        "zh": "{where} 完成: 成功 {ok}/{total}, 失败 {failed}, 用时 {elapsed} 秒, "
        "输出 {tps} tokens/s",
    },
    "round_heartbeat": {
        "en": "{where}: {done}/{total} requests done, {failed} failed, {elapsed} s so far",
        "zh": "{where}: 已完成 {done}/{total} 个请求, 失败 {failed}, 已用时 {elapsed} 秒",
    },
    "plots_skipped": {
        "en": "plots.png skipped: pip install matplotlib to get it",
        "zh": "未生成 plots.png: pip install matplotlib 后即可生成",
    },
    "results_written": {"en": "results written to {out}", "zh": "结果已写入 {out}"},
    "interrupted_nothing": {
        "en": "interrupted before the first round ended: no request had finished, so nothing "
        "was kept (the empty files in {out} were removed)",
        "zh": "在第一轮结束前被中断: 还没有请求完成, 因此没有保留任何结果 ({out} 中的空文件已删除)",
    },
    "interrupted_log": {
        "en": "interrupted before the first round ended: the {n} finished requests are kept in "
        "{log} (no round finished, so there is no summary, CSV or round file)",
        "zh": "在第一轮结束前被中断: 已完成的 {n} 个请求保留在 {log} "
        "(没有完整结束的轮次, 因此没有汇总、CSV 或轮次文件)",
    },
    "no_prometheus": {
        "en": "Hit rate is the server's own prefix-cache hit rate: give --prometheus-url "
        "http://HOST:PORT/metrics (vLLM and SGLang serve it on their API port) to read it",
        "zh": "命中率是服务端自己的前缀缓存命中率: 给出 --prometheus-url "
        "http://HOST:PORT/metrics (vLLM 与 SGLang 在其 API 端口提供) 即可读取",
    },
}


class Message(str):
    """A catalogued sentence: the ``str`` is its English text; ``render`` gives any language."""

    key: str
    params: dict[str, Any]

    def __new__(cls, key: str, **params: Any) -> Message:
        obj = super().__new__(cls, _format(key, params, "en"))
        obj.key = key
        obj.params = params
        return obj

    def render(self, lang: Lang) -> str:
        return _format(self.key, self.params, lang)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled and copied by key and parameters (``str``'s own way would pass the text as
        the key)."""
        return (_message, (self.key, self.params))


def _message(key: str, params: dict[str, Any]) -> Message:
    return Message(key, **params)


def render(text: str, lang: Lang) -> str:
    """``text`` in ``lang`` when it is a ``Message``; any other string as it is."""
    return text.render(lang) if isinstance(text, Message) else text


def _format(key: str, params: dict[str, Any], lang: Lang) -> str:
    templates = CATALOGUE[key]
    values = {k: render(v, lang) if isinstance(v, str) else v for k, v in params.items()}
    return templates.get(lang, templates["en"]).format(**values)


def level_words(level: Level) -> Message:
    """A level inside a sentence: ``concurrency 5``, ``rate 10 req/s (at most 32 in flight)``;
    its English text is ``Level.label``."""
    if level.kind == "concurrency":
        return Message("level_concurrency", c=level.concurrency)
    rate = level.rate or 0.0
    if level.kind == "trace":
        text = Message("level_trace", speed=format_rate(level.speedup))
    elif math.isinf(rate):
        text = Message("level_rate_inf")
    else:
        text = Message("level_rate", rate=format_rate(rate))
    if level.max_concurrency is None:
        return text
    return Message("level_cap", level=text, cap=level.max_concurrency)


def round_where(round: int, level: Level) -> Message:
    """``round 2 at concurrency 5``: where a round's warning happened."""
    return Message("where", round=round, level=level_words(level))
