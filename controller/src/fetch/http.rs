//! One GET, the body read up to `MAX_MODULE_BYTES`.

use super::{MAX_MODULE_BYTES, causes, too_large};

pub(super) async fn fetch(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    // `without_url`: the caller's message names the URL already.
    let failed = |e: reqwest::Error| causes(&e.without_url());
    let mut response = client.get(url).send().await.map_err(failed)?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("the server answered {status}"));
    }
    if response
        .content_length()
        .is_some_and(|length| length > MAX_MODULE_BYTES)
    {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if (bytes.len() + chunk.len()) as u64 > MAX_MODULE_BYTES {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
