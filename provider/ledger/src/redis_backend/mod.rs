//! Redis backend: lets terraform runs on different machines share one ledger. Every operation
//! is one Lua script (see `scripts.rs` for the key layout), so reserve's check-and-write is
//! atomic; pending reservations are Redis keys with a TTL (lease + grace) and stop counting at
//! their lease expiry by the server clock. Uses the blocking `redis` API over one connection per
//! instance, reconnecting once on a dropped connection (safe: every script is idempotent for
//! the same arguments). Standalone Redis only (scripts touch keys of several slots, so not
//! Redis Cluster).

mod scripts;

use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use redis::Value;

use crate::types::{
    lease_millis, ms_to_time, HolderId, NodeId, NodeUsage, Reservation, ReservationId,
    ReservationState, Resources, EXPIRED_GRACE,
};
use crate::{CapacityBelowReserved, HolderConflict, Ledger, LedgerError, Shortage};
use scripts::Scripts;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A Redis URL that displays (and debugs) with its password replaced by `***`, so it can be
/// logged and put in diagnostics.
#[derive(Clone, PartialEq, Eq)]
pub struct RedactedUrl(String);

impl RedactedUrl {
    /// Wraps a URL (any text; nothing is validated here).
    pub fn new(url: impl Into<String>) -> Self {
        RedactedUrl(url.into())
    }

    /// The full URL, password included: pass it to a client, never to a log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match url::Url::parse(&self.0) {
            Ok(mut u) => {
                if u.password().is_some() {
                    // Cannot fail for URLs that already carry a password.
                    let _ = u.set_password(Some("***"));
                }
                f.write_str(u.as_str())
            }
            Err(_) => match self.0.split_once("://") {
                Some((scheme, _)) => write!(f, "{scheme}://<unparseable, redacted>"),
                None => f.write_str("<unparseable, redacted>"),
            },
        }
    }
}

impl fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedactedUrl({self})")
    }
}

/// A ledger in a Redis server (`redis://[user][:password@]host:port/db`, or `rediss://` for TLS
/// via rustls; server certificates are checked against the system roots, which
/// `SSL_CERT_FILE` / `SSL_CERT_DIR` can point at a private CA).
pub struct RedisLedger {
    url: RedactedUrl,
    client: redis::Client,
    conn: Mutex<Option<redis::Connection>>,
    scripts: Scripts,
}

impl fmt::Debug for RedisLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLedger")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn corrupt(detail: impl Into<String>) -> LedgerError {
    LedgerError::Corrupt {
        detail: detail.into(),
    }
}

fn text(v: &Value) -> Result<String, LedgerError> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).map_err(|_| corrupt("non-UTF-8 text")),
        Value::SimpleString(s) => Ok(s.clone()),
        Value::Int(i) => Ok(i.to_string()),
        other => Err(corrupt(format!("expected text, got {other:?}"))),
    }
}

fn number(v: &Value) -> Result<u64, LedgerError> {
    match v {
        Value::Int(i) => u64::try_from(*i).map_err(|_| corrupt(format!("negative number {i}"))),
        other => {
            let t = text(other)?;
            t.parse::<u64>()
                .map_err(|_| corrupt(format!("expected a number, got {t:?}")))
        }
    }
}

fn array(v: &Value) -> Result<&[Value], LedgerError> {
    match v {
        Value::Array(items) => Ok(items),
        Value::Nil => Ok(&[]),
        other => Err(corrupt(format!("expected an array, got {other:?}"))),
    }
}

fn resources(items: &[Value]) -> Result<Resources, LedgerError> {
    if items.len() != 5 {
        return Err(corrupt(format!("expected 5 amounts, got {}", items.len())));
    }
    let mut vals = [0u64; 5];
    for (slot, item) in vals.iter_mut().zip(items) {
        *slot = number(item)?;
    }
    Resources::from_array(vals)
}

fn reservation(v: &Value) -> Result<Reservation, LedgerError> {
    let f = array(v)?;
    if f.len() != 11 {
        return Err(corrupt(format!(
            "reservation record has {} fields, expected 11",
            f.len()
        )));
    }
    let state = ReservationState::parse(&text(&f[3])?)?;
    let expires = number(&f[10])?;
    Ok(Reservation {
        id: ReservationId::new(text(&f[0])?)?,
        node: NodeId::new(text(&f[1])?)?,
        holder: HolderId::new(text(&f[2])?)?,
        amounts: resources(&f[4..9])?,
        state,
        created_at: ms_to_time(number(&f[9])?),
        expires_at: match state {
            ReservationState::Pending => Some(ms_to_time(expires)),
            ReservationState::Committed => None,
        },
    })
}

fn reservations(v: &Value) -> Result<Vec<Reservation>, LedgerError> {
    let mut out = array(v)?
        .iter()
        .map(reservation)
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_by(|a, b| (&a.node, a.created_at, &a.id).cmp(&(&b.node, b.created_at, &b.id)));
    Ok(out)
}

/// Splits a script reply into its status word and the rest.
fn status(v: &Value) -> Result<(String, &[Value]), LedgerError> {
    let items = array(v)?;
    let (first, rest) = items
        .split_first()
        .ok_or_else(|| corrupt("empty script reply"))?;
    Ok((text(first)?, rest))
}

fn field(rest: &[Value], i: usize) -> Result<&Value, LedgerError> {
    rest.get(i)
        .ok_or_else(|| corrupt(format!("script reply is missing field {i}")))
}

fn unexpected(word: &str) -> LedgerError {
    corrupt(format!("unexpected script status {word:?}"))
}

impl RedisLedger {
    /// Connects to the server at `url` (checked with a PING).
    pub fn open(url: &str) -> Result<Self, LedgerError> {
        let redacted = RedactedUrl::new(url);
        if url.to_ascii_lowercase().starts_with("rediss://") {
            // rustls needs a process-wide crypto provider; use aws-lc-rs (as the provider's
            // gRPC TLS does) unless the host process already installed one.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        }
        let client = redis::Client::open(url).map_err(|source| LedgerError::Redis {
            url: redacted.to_string(),
            context: "parsing the URL",
            source,
        })?;
        let ledger = RedisLedger {
            url: redacted,
            client,
            conn: Mutex::new(None),
            scripts: Scripts::new(),
        };
        ledger.with_conn("connecting", |c| redis::cmd("PING").query::<String>(c))?;
        Ok(ledger)
    }

    /// The server URL, password redacted when displayed.
    pub fn url(&self) -> &RedactedUrl {
        &self.url
    }

    fn lock(&self) -> MutexGuard<'_, Option<redis::Connection>> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let conn = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        conn.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(conn)
    }

    /// Runs `f` on the connection, reconnecting and retrying once if the connection was lost.
    fn with_conn<T>(
        &self,
        context: &'static str,
        mut f: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, LedgerError> {
        let mut guard = self.lock();
        let mut last = None;
        for _attempt in 0..2 {
            let conn = match guard.as_mut() {
                Some(c) => c,
                None => match self.connect() {
                    Ok(c) => guard.insert(c),
                    Err(e) => {
                        last = Some(e);
                        continue;
                    }
                },
            };
            match f(conn) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let retry = e.is_io_error() || e.is_connection_dropped();
                    if retry {
                        *guard = None;
                    }
                    last = Some(e);
                    if !retry {
                        break;
                    }
                }
            }
        }
        match last {
            Some(source) => Err(LedgerError::Redis {
                url: self.url.to_string(),
                context,
                source,
            }),
            None => Err(corrupt("redis call failed without an error")),
        }
    }

    fn run(
        &self,
        context: &'static str,
        script: &redis::Script,
        args: &[String],
    ) -> Result<Value, LedgerError> {
        self.with_conn(context, |c| {
            let mut inv = script.prepare_invoke();
            for a in args {
                inv.arg(a);
            }
            inv.invoke::<Value>(c)
        })
    }

    fn apply_capacity(
        &self,
        node: &NodeId,
        capacity: &Resources,
        force: bool,
    ) -> Result<NodeUsage, LedgerError> {
        capacity.validate()?;
        let mut args = vec![node.to_string()];
        args.extend(capacity.to_array().iter().map(u64::to_string));
        args.push(if force { "1" } else { "0" }.to_string());
        let reply = self.run("setting capacity", &self.scripts.set_capacity, &args)?;
        let (word, rest) = status(&reply)?;
        let active = reservations(field(rest, 0)?)?;
        let usage = NodeUsage::new(node.clone(), *capacity, &active);
        match word.as_str() {
            "ok" => Ok(usage),
            "below" => Err(LedgerError::CapacityBelowReserved(Box::new(
                CapacityBelowReserved {
                    node: node.clone(),
                    requested_capacity: *capacity,
                    reserved: usage.reserved,
                    holders: usage.holders,
                },
            ))),
            other => Err(unexpected(other)),
        }
    }
}

impl Ledger for RedisLedger {
    fn location(&self) -> String {
        self.url.to_string()
    }

    fn set_capacity(&self, node: &NodeId, capacity: &Resources) -> Result<NodeUsage, LedgerError> {
        self.apply_capacity(node, capacity, false)
    }

    fn force_capacity(
        &self,
        node: &NodeId,
        capacity: &Resources,
    ) -> Result<NodeUsage, LedgerError> {
        self.apply_capacity(node, capacity, true)
    }

    fn remove_node(&self, node: &NodeId) -> Result<bool, LedgerError> {
        let reply = self.run(
            "removing node",
            &self.scripts.remove_node,
            &[node.to_string()],
        )?;
        let (word, rest) = status(&reply)?;
        match word.as_str() {
            "removed" => Ok(true),
            "absent" => Ok(false),
            "in_use" => {
                let active = reservations(field(rest, 0)?)?;
                let usage = NodeUsage::new(node.clone(), Resources::ZERO, &active);
                Err(LedgerError::NodeInUse {
                    node: node.clone(),
                    holders: usage.holders,
                })
            }
            other => Err(unexpected(other)),
        }
    }

    fn reserve(
        &self,
        node: &NodeId,
        amounts: &Resources,
        holder: &HolderId,
        lease: Option<Duration>,
    ) -> Result<Reservation, LedgerError> {
        amounts.validate()?;
        let lease_ms = lease_millis(lease)?;
        let grace = u64::try_from(EXPIRED_GRACE.as_millis()).unwrap_or(u64::MAX);
        let mut args = vec![node.to_string(), holder.to_string()];
        args.extend(amounts.to_array().iter().map(u64::to_string));
        args.push(lease_ms.to_string());
        args.push(ReservationId::generate().to_string());
        args.push(grace.to_string());
        let reply = self.run("reserving", &self.scripts.reserve, &args)?;
        let (word, rest) = status(&reply)?;
        match word.as_str() {
            "ok" => reservation(field(rest, 0)?),
            "unknown_node" => Err(LedgerError::UnknownNode { node: node.clone() }),
            "conflict" => {
                let existing = reservation(field(rest, 0)?)?;
                Err(LedgerError::HolderConflict(Box::new(HolderConflict {
                    node: node.clone(),
                    holder: holder.clone(),
                    existing_id: existing.id,
                    existing: existing.amounts,
                    requested: *amounts,
                })))
            }
            "full" => {
                let capacity = resources(array(field(rest, 0)?)?)?;
                let active = reservations(field(rest, 1)?)?;
                let usage = NodeUsage::new(node.clone(), capacity, &active);
                let wanted = usage.reserved.saturating_add(amounts);
                Err(LedgerError::InsufficientCapacity(Box::new(Shortage {
                    node: node.clone(),
                    requested: *amounts,
                    free: usage.free,
                    capacity,
                    short: wanted.exceeding(&capacity),
                    holders: usage.holders,
                })))
            }
            other => Err(unexpected(other)),
        }
    }

    fn commit(&self, id: &ReservationId) -> Result<Reservation, LedgerError> {
        let reply = self.run("committing", &self.scripts.commit, &[id.to_string()])?;
        let (word, rest) = status(&reply)?;
        match word.as_str() {
            "ok" => reservation(field(rest, 0)?),
            "not_found" => Err(LedgerError::ReservationNotFound { id: id.clone() }),
            "expired" => {
                let r = reservation(field(rest, 0)?)?;
                Err(LedgerError::LeaseExpired {
                    expired_at: r.expires_at.unwrap_or(r.created_at),
                    id: r.id,
                    node: r.node,
                    holder: r.holder,
                })
            }
            other => Err(unexpected(other)),
        }
    }

    fn release(&self, id: &ReservationId) -> Result<bool, LedgerError> {
        let reply = self.run("releasing", &self.scripts.release, &[id.to_string()])?;
        Ok(number(&reply)? > 0)
    }

    fn release_holder(&self, holder: &HolderId) -> Result<usize, LedgerError> {
        let reply = self.run(
            "releasing holder",
            &self.scripts.release_holder,
            &[holder.to_string()],
        )?;
        usize::try_from(number(&reply)?).map_err(|_| corrupt("release count out of range"))
    }

    fn list(&self, node: Option<&NodeId>) -> Result<Vec<Reservation>, LedgerError> {
        let arg = node.map(NodeId::to_string).unwrap_or_default();
        let reply = self.run("listing", &self.scripts.list, &[arg])?;
        reservations(&reply)
    }

    fn usage(&self, node: &NodeId) -> Result<NodeUsage, LedgerError> {
        let reply = self.run("reading usage", &self.scripts.usage, &[node.to_string()])?;
        let (word, rest) = status(&reply)?;
        match word.as_str() {
            "ok" => {
                let capacity = resources(array(field(rest, 0)?)?)?;
                let active = reservations(field(rest, 1)?)?;
                Ok(NodeUsage::new(node.clone(), capacity, &active))
            }
            "unknown_node" => Err(LedgerError::UnknownNode { node: node.clone() }),
            other => Err(unexpected(other)),
        }
    }

    fn nodes(&self) -> Result<Vec<NodeId>, LedgerError> {
        let names: Vec<String> = self.with_conn("listing nodes", |c| {
            redis::cmd("SMEMBERS").arg("hybrid:ledger:nodes").query(c)
        })?;
        let mut nodes = names
            .into_iter()
            .map(NodeId::new)
            .collect::<Result<Vec<_>, _>>()?;
        nodes.sort();
        Ok(nodes)
    }

    fn put_plan_note(&self, key: &str, body: &[u8], ttl: Duration) -> Result<(), LedgerError> {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        self.with_conn("writing a plan note", |c| {
            redis::cmd("SET")
                .arg(format!("{PLAN_NOTE_PREFIX}{key}"))
                .arg(body)
                .arg("PX")
                .arg(millis)
                .query::<()>(c)
        })
    }

    fn plan_note(&self, key: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        self.with_conn("reading a plan note", |c| {
            redis::cmd("GET")
                .arg(format!("{PLAN_NOTE_PREFIX}{key}"))
                .query::<Option<Vec<u8>>>(c)
        })
    }

    fn forget_plan_note(&self, key: &str) -> Result<(), LedgerError> {
        self.with_conn("forgetting a plan note", |c| {
            redis::cmd("DEL")
                .arg(format!("{PLAN_NOTE_PREFIX}{key}"))
                .query::<()>(c)
        })
    }
}

/// Plan notes are binary strings with a Redis expiry (`SET ... PX`).
const PLAN_NOTE_PREFIX: &str = "hybrid:ledger:plan-note:";
