pub(crate) mod admin;
pub(crate) mod app;
pub(crate) mod connect;
pub(crate) mod health;
pub(crate) mod proxy;
pub(crate) mod use_api;
pub(crate) mod webhooks;

use serde::{Deserialize, Serialize};

/// Cursor pagination input shared by list endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageParams {
    pub after: Option<String>,
    pub limit: Option<u32>,
}

/// A page of results; `next_cursor` is passed back as `after` to get the next page.
#[derive(Debug, Serialize)]
pub(crate) struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn new(data: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> String) -> Self {
        let next_cursor = (data.len() as u32 >= limit).then(|| data.last().map(&cursor_of)).flatten();
        Page { data, next_cursor }
    }
}
