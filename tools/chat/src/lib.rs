//! A client of an OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp server, …):
//! one request (with tools or without), retried with exponential backoff on rate limits
//! (429), server errors, timeouts and malformed replies; token usage counted from the replies.
//! `swe-rollout --solver openai:…` and `skill-distill --describe openai:…` use it.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use serde_json::{Value, json};

#[cfg(feature = "testing")]
pub mod testing;

/// A served model: the `BASE_URL#MODEL` of an `openai:BASE_URL#MODEL` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub base_url: String,
    pub model: String,
}

impl Endpoint {
    /// Parses `BASE_URL#MODEL` (the part after `openai:`).
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        match text.rsplit_once('#') {
            Some((url, model))
                if (url.starts_with("http://") || url.starts_with("https://"))
                    && !model.is_empty() =>
            {
                Ok(Endpoint {
                    base_url: url.trim_end_matches('/').to_string(),
                    model: model.to_string(),
                })
            }
            _ => Err(format!(
                "`{text}`: expected BASE_URL#MODEL, e.g. http://localhost:8000/v1#qwen"
            )),
        }
    }

    /// Parses `openai:BASE_URL#MODEL`.
    pub fn parse_spec(spec: &str) -> Result<Endpoint, String> {
        match spec.strip_prefix("openai:") {
            Some(rest) => Endpoint::parse(rest).map_err(|e| format!("openai:{e}")),
            None => Err(format!("`{spec}`: expected openai:BASE_URL#MODEL")),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "openai:{}#{}", self.base_url, self.model)
    }
}

/// The flags of a stage that calls an endpoint.
#[derive(Debug, Clone, clap::Args)]
pub struct ChatArgs {
    /// Served model: the environment variable that holds the API key (none: no key sent)
    #[arg(long, value_name = "NAME", default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,
    /// Served model: seconds one request may take
    #[arg(long, value_name = "SECONDS", default_value_t = 120.0)]
    pub request_timeout: f64,
    /// Served model: retries of a request after a rate limit (429), a server error, a timeout
    /// or a malformed reply, with exponential backoff from 1 s
    #[arg(long, default_value_t = 4)]
    pub retries: u32,
}

impl ChatArgs {
    /// A client of `endpoint` with these flags (the key read from the environment now).
    pub fn client(&self, endpoint: &Endpoint) -> ChatClient {
        let api_key = std::env::var(&self.api_key_env)
            .ok()
            .filter(|k| !k.is_empty());
        let options = ClientOptions {
            timeout: Duration::from_secs_f64(self.request_timeout.max(0.001)),
            retries: self.retries,
            backoff: Duration::from_secs(1),
        };
        ChatClient::new(&endpoint.base_url, &endpoint.model, api_key, options)
    }
}

/// One tool call the model asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them (JSON text, possibly invalid).
    pub arguments: String,
}

/// The model's reply.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The assistant message as received, to send back in the history.
    pub message: Value,
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    /// Prompt and completion tokens of this request.
    pub tokens: u64,
}

/// How requests are made and retried.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub retries: u32,
    /// The first wait; each retry doubles it (a `Retry-After` header overrides it).
    pub backoff: Duration,
}

pub struct ChatClient {
    pub base_url: String,
    pub model: String,
    api_key: Option<String>,
    agent: ureq::Agent,
    options: ClientOptions,
}

/// Why one request failed, and whether trying again may help.
enum Failure {
    Transient(String, Option<Duration>),
    Fatal(String),
}

impl ChatClient {
    pub fn new(
        base_url: &str,
        model: &str,
        api_key: Option<String>,
        options: ClientOptions,
    ) -> Self {
        let agent = ureq::AgentBuilder::new().timeout(options.timeout).build();
        ChatClient {
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            api_key,
            agent,
            options,
        }
    }

    fn url(&self) -> String {
        format!("{}/chat/completions", self.base_url)
    }

    /// Sends `messages` with `tools` (none when null or empty); retries transient failures,
    /// then gives up with the last reason.
    pub fn complete(
        &self,
        messages: &[Value],
        tools: &Value,
        temperature: f64,
        top_p: f64,
        seed: u64,
    ) -> Result<Reply> {
        let mut body = json!({
            "model": self.model,
            "messages": messages,
            "temperature": temperature,
            "top_p": top_p,
            "seed": seed,
        });
        if tools.as_array().is_some_and(|t| !t.is_empty()) {
            body["tools"] = tools.clone();
            body["tool_choice"] = json!("auto");
        }
        let body = body.to_string();
        let mut wait = self.options.backoff;
        let mut last = String::new();
        for attempt in 0..=self.options.retries {
            match self.request(&body) {
                Ok(reply) => return Ok(reply),
                Err(Failure::Fatal(why)) => bail!("{}: {why}", self.url()),
                Err(Failure::Transient(why, retry_after)) => {
                    tracing::debug!("{}: {why} (attempt {})", self.url(), attempt + 1);
                    last = why;
                    if attempt < self.options.retries {
                        std::thread::sleep(retry_after.unwrap_or(wait));
                        wait *= 2;
                    }
                }
            }
        }
        bail!(
            "{}: {last} (gave up after {} attempts)",
            self.url(),
            self.options.retries + 1
        )
    }

    fn request(&self, body: &str) -> Result<Reply, Failure> {
        let mut request = self
            .agent
            .post(&self.url())
            .set("Content-Type", "application/json");
        if let Some(key) = &self.api_key {
            request = request.set("Authorization", &format!("Bearer {key}"));
        }
        let response = match request.send_string(body) {
            Ok(response) => response,
            Err(ureq::Error::Status(code, response)) => {
                let retry_after = response
                    .header("Retry-After")
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .map(|s| Duration::from_secs_f64(s.clamp(0.0, 60.0)));
                let text = response.into_string().unwrap_or_default();
                let text: String = text.chars().take(300).collect();
                let why = format!("HTTP {code}: {text}");
                return Err(if code == 429 || code >= 500 {
                    Failure::Transient(why, retry_after)
                } else {
                    Failure::Fatal(why)
                });
            }
            Err(ureq::Error::Transport(err)) => {
                return Err(Failure::Transient(
                    format!("cannot reach the endpoint: {err}"),
                    None,
                ));
            }
        };
        let text = response
            .into_string()
            .map_err(|err| Failure::Transient(format!("reading the reply: {err}"), None))?;
        parse_reply(&text)
            .map_err(|err| Failure::Transient(format!("malformed reply: {err:#}"), None))
    }
}

/// Reads `choices[0].message` and `usage` of a chat-completions reply.
pub fn parse_reply(text: &str) -> Result<Reply> {
    let value: Value = serde_json::from_str(text).map_err(|err| anyhow!("not JSON ({err})"))?;
    let message = value
        .pointer("/choices/0/message")
        .filter(|m| m.is_object())
        .ok_or_else(|| anyhow!("no choices[0].message"))?
        .clone();
    let content = message
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut tool_calls = Vec::new();
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let field = |pointer: &str| call.pointer(pointer).and_then(Value::as_str);
        let name = field("/function/name").ok_or_else(|| anyhow!("a tool call without a name"))?;
        tool_calls.push(ToolCall {
            id: field("/id").unwrap_or_default().to_string(),
            name: name.to_string(),
            arguments: field("/function/arguments").unwrap_or("{}").to_string(),
        });
    }
    let usage = |key: &str| {
        value
            .pointer(&format!("/usage/{key}"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Ok(Reply {
        message,
        content,
        tool_calls,
        tokens: usage("prompt_tokens") + usage("completion_tokens"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_with_tool_calls_and_usage_parse() {
        let text = r#"{"choices":[{"message":{"role":"assistant","content":null,
            "tool_calls":[{"id":"c1","type":"function","function":{"name":"view","arguments":"{\"path\":\"a.py\"}"}}]}}],
            "usage":{"prompt_tokens":120,"completion_tokens":8}}"#;
        let reply = parse_reply(text).unwrap();
        assert_eq!(reply.tokens, 128);
        assert_eq!(
            reply.tool_calls,
            [ToolCall {
                id: "c1".into(),
                name: "view".into(),
                arguments: r#"{"path":"a.py"}"#.into()
            }]
        );
        assert!(parse_reply("<html>oops</html>").is_err());
        assert!(parse_reply(r#"{"choices":[]}"#).is_err());
    }

    #[test]
    fn endpoints_parse_from_their_spec() {
        let endpoint =
            Endpoint::parse_spec("openai:http://localhost:8000/v1/#qwen2.5-coder").unwrap();
        assert_eq!(endpoint.base_url, "http://localhost:8000/v1");
        assert_eq!(endpoint.model, "qwen2.5-coder");
        assert_eq!(
            endpoint.to_string(),
            "openai:http://localhost:8000/v1#qwen2.5-coder"
        );
        assert!(Endpoint::parse_spec("openai:localhost#m").is_err());
        assert!(Endpoint::parse_spec("openai:http://h/v1#").is_err());
        assert!(Endpoint::parse_spec("http://h/v1#m").is_err());
    }
}
