//! `uri`: an HTTP request from the control node (reqwest with rustls), checked against the
//! expected status codes, with Ansible's result fields (`status`, `content`, `json`, response
//! headers lowercased with `_`). Retries only come from the task's `until`/`retries`. In check
//! mode only safe methods (GET, HEAD) are sent; anything else is skipped.

use super::{Args, BoxFuture, Ctx, Kind, Module, ModuleError, ModuleResult, Param, Runs};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, WWW_AUTHENTICATE};
use reqwest::redirect::Policy;
use serde_json::{Map, Value as Json};
use std::time::{Duration, Instant};

/// `uri`.
pub struct Uri;

const PARAMS: &[Param] = &[
    Param::new("url", Kind::Str).required(),
    Param::new("method", Kind::Str),
    Param::new("body", Kind::Any),
    Param::new("body_format", Kind::Str).choices(&["raw", "json", "form-urlencoded"]),
    Param::new("headers", Kind::Dict),
    Param::new("status_code", Kind::Any),
    Param::new("return_content", Kind::Bool),
    Param::new("timeout", Kind::Int),
    Param::new("validate_certs", Kind::Bool),
    Param::new("follow_redirects", Kind::Str).choices(&["all", "none", "safe", "urllib2", "yes", "no"]),
    Param::new("url_username", Kind::Str).aliases(&["user"]),
    Param::new("url_password", Kind::Str).aliases(&["password"]).secret(),
    Param::new("force_basic_auth", Kind::Bool),
    Param::new("body_regex", Kind::Str),
];

/// The accepted status codes: an integer, a string, or a list of them (default 200).
fn status_codes(v: Option<&Json>) -> Result<Vec<i64>, String> {
    let one = |v: &Json| match v {
        Json::Number(n) => n.as_i64().ok_or_else(|| format!("status_code `{n}` is not an integer")),
        Json::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("status_code `{s}` is not an integer")),
        other => Err(format!("status_code `{other}` is not an integer")),
    };
    match v {
        None => Ok(vec![200]),
        Some(Json::Array(items)) => items.iter().map(one).collect(),
        Some(Json::String(s)) if s.contains(',') => s.split(',').map(|p| one(&Json::String(p.into()))).collect(),
        Some(v) => Ok(vec![one(v)?]),
    }
}

/// A request body and the content type it implies.
type Body = (Vec<u8>, Option<&'static str>);

/// The request body for `body` and `body_format`.
fn body_bytes(body: Option<&Json>, format: &str) -> Result<Option<Body>, String> {
    let Some(body) = body else {
        return Ok(None);
    };
    let text = |v: &Json| match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    Ok(Some(match format {
        "json" => match body {
            Json::String(s) => (s.clone().into_bytes(), Some("application/json")),
            other => (
                serde_json::to_vec(other).map_err(|e| e.to_string())?,
                Some("application/json"),
            ),
        },
        "form-urlencoded" => {
            let pairs: Vec<(String, String)> = match body {
                Json::Object(m) => m.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
                Json::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        Json::Array(p) if p.len() == 2 => Ok((text(&p[0]), text(&p[1]))),
                        _ => Err("a form-urlencoded list body holds [key, value] pairs".to_string()),
                    })
                    .collect::<Result<_, _>>()?,
                Json::String(s) => {
                    return Ok(Some((
                        s.clone().into_bytes(),
                        Some("application/x-www-form-urlencoded"),
                    )));
                }
                other => return Err(format!("cannot encode `{other}` as a form")),
            };
            let mut out = reqwest::Url::parse("http://x/").map_err(|e| e.to_string())?;
            out.query_pairs_mut().extend_pairs(pairs);
            (
                out.query().unwrap_or_default().as_bytes().to_vec(),
                Some("application/x-www-form-urlencoded"),
            )
        }
        _ => (text(body).into_bytes(), None),
    }))
}

/// What a request sends, built once and sent again for a basic-auth challenge.
struct Request {
    method: reqwest::Method,
    url: String,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
}

impl Request {
    fn send(
        &self,
        client: &reqwest::Client,
        auth: Option<(&str, &str)>,
    ) -> impl std::future::Future<Output = reqwest::Result<reqwest::Response>> + use<> {
        let mut b = client
            .request(self.method.clone(), &self.url)
            .headers(self.headers.clone());
        if let Some(body) = &self.body {
            b = b.body(body.clone());
        }
        if let Some((u, p)) = auth {
            b = b.basic_auth(u, Some(p));
        }
        b.send()
    }
}

impl Module for Uri {
    fn name(&self) -> &'static str {
        "uri"
    }
    fn params(&self) -> &'static [Param] {
        PARAMS
    }
    fn runs(&self) -> Runs {
        Runs::Controller
    }
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, args: &'a Args) -> BoxFuture<'a, Result<ModuleResult, ModuleError>> {
        Box::pin(async move {
            let url = args.str("url").unwrap_or_default().to_string();
            let method_name = args.str("method").unwrap_or("GET").to_ascii_uppercase();
            let method = reqwest::Method::from_bytes(method_name.as_bytes())
                .map_err(|_| ModuleError::Args(format!("`{method_name}` is not an HTTP method")))?;
            let safe = matches!(method_name.as_str(), "GET" | "HEAD");
            if ctx.check && !safe {
                return Ok(ModuleResult {
                    skipped: true,
                    msg: Some(format!("{method_name} is not sent in check mode")),
                    ..ModuleResult::default()
                });
            }
            let expected = status_codes(args.get("status_code")).map_err(ModuleError::Args)?;
            let body_regex = args
                .str("body_regex")
                .map(regex::Regex::new)
                .transpose()
                .map_err(|e| ModuleError::Args(format!("body_regex: {e}")))?;
            let body =
                body_bytes(args.get("body"), args.str("body_format").unwrap_or("raw")).map_err(ModuleError::Args)?;
            let mut headers = HeaderMap::new();
            if let Some(Json::Object(map)) = args.get("headers") {
                for (k, v) in map {
                    let v = match v {
                        Json::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let name = HeaderName::from_bytes(k.as_bytes())
                        .map_err(|_| ModuleError::Args(format!("`{k}` is not a valid header name")))?;
                    let value = HeaderValue::from_str(&v)
                        .map_err(|_| ModuleError::Args(format!("the value of header `{k}` is not valid")))?;
                    headers.insert(name, value);
                }
            }
            if let Some((_, Some(ct))) = &body
                && !headers.contains_key(CONTENT_TYPE)
            {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            }
            let follow = match args.str("follow_redirects").unwrap_or("safe") {
                "all" | "yes" => true,
                "none" | "no" => false,
                _ => safe,
            };
            let client = reqwest::Client::builder()
                .user_agent(concat!("tend-httpget/", env!("CARGO_PKG_VERSION")))
                .timeout(Duration::from_secs(args.int("timeout").unwrap_or(30).max(1) as u64))
                .redirect(if follow { Policy::limited(10) } else { Policy::none() })
                .danger_accept_invalid_certs(!args.bool("validate_certs", true))
                .build()
                .map_err(|e| ModuleError::Failed(format!("cannot set up the HTTP client: {e}")))?;
            let request = Request {
                method,
                url: url.clone(),
                headers,
                body: body.map(|(b, _)| b),
            };
            let auth = args
                .str("url_username")
                .map(|u| (u, args.str("url_password").unwrap_or("")));
            let started = Instant::now();
            let mut r = ModuleResult::default();
            let mut data = Map::new();
            data.insert("url".into(), url.clone().into());
            let codes = format!(
                "[{}]",
                expected.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
            );

            let first = request
                .send(&client, auth.filter(|_| args.bool("force_basic_auth", false)))
                .await;
            let response = match (first, auth) {
                (Ok(resp), Some(a))
                    if resp.status() == reqwest::StatusCode::UNAUTHORIZED && !args.bool("force_basic_auth", false) =>
                {
                    let challenged = resp
                        .headers()
                        .get(WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.to_ascii_lowercase().starts_with("basic"));
                    if challenged {
                        request.send(&client, Some(a)).await
                    } else {
                        Ok(resp)
                    }
                }
                (other, _) => other,
            };
            let response = match response {
                Ok(resp) => resp,
                Err(e) => {
                    data.insert("status".into(), (-1).into());
                    data.insert("elapsed".into(), started.elapsed().as_secs().into());
                    r.failed = true;
                    r.msg = Some(format!(
                        "Status code was -1 and not {codes}: Request failed: {}",
                        error_chain(&e)
                    ));
                    r.data = data;
                    return Ok(r);
                }
            };
            let status = i64::from(response.status().as_u16());
            let reason = response.status().canonical_reason().unwrap_or("").to_string();
            let final_url = response.url().to_string();
            data.insert(
                "redirected".into(),
                (final_url != url && final_url.trim_end_matches('/') != url.trim_end_matches('/')).into(),
            );
            data.insert("url".into(), final_url.into());
            data.insert("status".into(), status.into());
            let is_json = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
            for (name, value) in response.headers() {
                let key = name.as_str().to_ascii_lowercase().replace('-', "_");
                if matches!(
                    key.as_str(),
                    "status" | "url" | "redirected" | "elapsed" | "json" | "content" | "msg"
                ) {
                    continue;
                }
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                // Repeated headers are joined as Python's http.client does.
                let joined = match data.get(&key).and_then(Json::as_str) {
                    Some(prev) => format!("{prev}, {value}"),
                    None => value,
                };
                data.insert(key, joined.into());
            }
            let bytes = match response.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    r.failed = true;
                    r.msg = Some(format!("reading the response failed: {}", error_chain(&e)));
                    data.insert("elapsed".into(), started.elapsed().as_secs().into());
                    r.data = data;
                    return Ok(r);
                }
            };
            data.insert("elapsed".into(), started.elapsed().as_secs().into());
            let content = String::from_utf8_lossy(&bytes).into_owned();
            if is_json && let Ok(j) = serde_json::from_slice::<Json>(&bytes) {
                data.insert("json".into(), j);
            }
            if args.bool("return_content", false) {
                data.insert("content".into(), content.clone().into());
            }
            r.msg = Some(format!("OK ({} bytes)", bytes.len()));
            if !expected.contains(&status) {
                r.failed = true;
                r.msg = Some(format!(
                    "Status code was {status} and not {codes}: HTTP Error {status}: {reason}"
                ));
            } else if let Some(re) = &body_regex
                && !re.is_match(&content)
            {
                r.failed = true;
                r.msg = Some(format!("the response body does not match body_regex `{}`", re.as_str()));
            }
            data.insert("msg".into(), r.msg.clone().unwrap_or_default().into());
            r.data = data;
            Ok(r)
        })
    }
}

/// An error with its causes, as one line (reqwest keeps the useful part in the sources).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_codes_like_ansible() {
        assert_eq!(status_codes(None).unwrap(), vec![200]);
        assert_eq!(status_codes(Some(&json!(201))).unwrap(), vec![201]);
        assert_eq!(status_codes(Some(&json!([200, "204"]))).unwrap(), vec![200, 204]);
        assert_eq!(status_codes(Some(&json!("200,301"))).unwrap(), vec![200, 301]);
        assert!(status_codes(Some(&json!("ok"))).is_err());
    }

    #[test]
    fn bodies() {
        let (b, ct) = body_bytes(Some(&json!({"a": 1})), "json").unwrap().unwrap();
        assert_eq!((b.as_slice(), ct), (&br#"{"a":1}"#[..], Some("application/json")));
        let (b, _) = body_bytes(Some(&json!({"name": "a b", "x": "&"})), "form-urlencoded")
            .unwrap()
            .unwrap();
        assert_eq!(b, b"name=a+b&x=%26");
        let (b, ct) = body_bytes(Some(&json!("raw text")), "raw").unwrap().unwrap();
        assert_eq!((b.as_slice(), ct), (&b"raw text"[..], None));
    }
}
