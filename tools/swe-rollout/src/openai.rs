//! A client of an OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp server, …):
//! one request with tools, retried with exponential backoff on rate limits (429), server
//! errors, timeouts and malformed replies; token usage counted from the replies.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use serde_json::{Value, json};

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

    /// Sends `messages` with `tools`; retries transient failures, then gives up with the
    /// last reason.
    pub fn complete(
        &self,
        messages: &[Value],
        tools: &Value,
        temperature: f64,
        top_p: f64,
        seed: u64,
    ) -> Result<Reply> {
        let body = json!({
            "model": self.model,
            "messages": messages,
            "tools": tools,
            "tool_choice": "auto",
            "temperature": temperature,
            "top_p": top_p,
            "seed": seed,
        })
        .to_string();
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
}
