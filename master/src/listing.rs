//! One page of a listing (objects, multipart uploads) over a key range, with S3's delimiter
//! rules: keys that hold the delimiter after the prefix roll up into a common prefix, and
//! each common prefix costs one range read: the scan jumps past every key under it.

use strata_common::Result;
use strata_common::kv::Txn;

pub(crate) struct Page<T> {
    pub items: Vec<T>,
    pub common_prefixes: Vec<String>,
    pub truncated: bool,
    /// The last key or common prefix returned.
    pub next_marker: String,
}

pub(crate) struct Scan<'a> {
    pub begin: Vec<u8>,
    pub end: Vec<u8>,
    pub prefix: &'a str,
    pub delimiter: &'a str,
    /// Common prefixes at or before it were returned by an earlier page.
    pub marker: &'a str,
    pub max: usize,
}

/// `decode` turns a row into its S3 key and item; `past` gives the first storage key after
/// every key that starts with a common prefix.
pub(crate) async fn scan<T>(
    t: &mut Txn,
    s: Scan<'_>,
    decode: impl Fn(&[u8], &[u8]) -> Result<(String, T)>,
    past: impl Fn(&str) -> Vec<u8>,
) -> Result<Page<T>> {
    let mut page =
        Page { items: Vec::new(), common_prefixes: Vec::new(), truncated: false, next_marker: String::new() };
    let (mut begin, mut count) = (s.begin, 0usize);
    if s.max == 0 {
        return Ok(page);
    }
    'scan: while begin < s.end {
        let rows = t.get_range(&begin, &s.end, (s.max - count + 1).min(1001), false).await?;
        if rows.is_empty() {
            break;
        }
        for (full, value) in &rows {
            let (key, item) = decode(full, value)?;
            let rest = key.get(s.prefix.len()..).unwrap_or_default();
            let cut = if s.delimiter.is_empty() { None } else { rest.find(s.delimiter) };
            if let Some(i) = cut {
                let cp = format!("{}{}", s.prefix, &rest[..i + s.delimiter.len()]);
                if cp.as_str() > s.marker {
                    if count == s.max {
                        page.truncated = true;
                        break 'scan;
                    }
                    page.common_prefixes.push(cp.clone());
                    page.next_marker = cp.clone();
                    count += 1;
                }
                begin = past(&cp);
                continue 'scan;
            }
            if count == s.max {
                page.truncated = true;
                break 'scan;
            }
            page.next_marker = key;
            page.items.push(item);
            count += 1;
            begin = full.clone();
            begin.push(0);
        }
    }
    Ok(page)
}
