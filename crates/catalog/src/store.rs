//! The products, reservations and stock adjustments tables. Stock never goes negative because
//! every update that takes units carries that condition itself (`WHERE on_hand >= $n`), so
//! concurrent reservations of the last units are decided by the database, one row at a time; a
//! reservation's status changes only by conditional updates, so a commit and a release (or the
//! expiry sweeper) can never both win. Products are always locked in SKU order, after the
//! reservation's row, so two transactions never wait on each other in a circle.

use orderly::money::Money;
use orderly_kit::db::{Database, QueryError, Row, Transaction};
use orderly_kit::params;
use orderly_kit::time::now_micros;

/// The schema, applied at start.
pub const MIGRATIONS: &[orderly_kit::db::EmbeddedMigration] = &[
    (1, "catalog", include_str!("../migrations/0001_catalog.sql")),
    (
        2,
        "reservation prices",
        include_str!("../migrations/0002_reservation_prices.sql"),
    ),
];

/// `SELECT` of every column of a product, followed by the rest of the query.
macro_rules! select_products {
    ($rest:literal) => {
        concat!(
            "SELECT sku, name, description, currency, price, on_hand, reserved, sold, create_time, update_time FROM products ",
            $rest
        )
    };
}

/// A reservation changed in a transaction that cannot then be read back in it: a broken database.
const VANISHED: QueryError = QueryError::Decode {
    column: "order_id",
    message: "the reservation changed is not there",
};

/// A product as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRecord {
    /// Its SKU.
    pub sku: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// The ISO 4217 code of its price.
    pub currency: String,
    /// Its price, in minor units.
    pub price: i64,
    /// Units that can be sold now.
    pub on_hand: i64,
    /// Units reserved for orders being placed.
    pub reserved: i64,
    /// Units sold.
    pub sold: i64,
    /// Microseconds since the Unix epoch.
    pub create_time: i64,
    /// Microseconds since the Unix epoch.
    pub update_time: i64,
}

/// A new product, checked.
#[derive(Debug, Clone)]
pub struct NewProduct {
    /// Its SKU.
    pub sku: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Its price.
    pub price: Money,
    /// Its starting stock on hand.
    pub on_hand: i64,
}

impl NewProduct {
    /// The product as stored when created at `now`: nothing reserved or sold.
    fn record(&self, now: i64) -> ProductRecord {
        ProductRecord {
            sku: self.sku.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            currency: self.price.currency().to_string(),
            price: self.price.minor(),
            on_hand: self.on_hand,
            reserved: 0,
            sold: 0,
            create_time: now,
            update_time: now,
        }
    }
}

/// A change of a product: each field set is changed.
#[derive(Debug, Clone, Default)]
pub struct ProductChange {
    /// A new name.
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// A new price.
    pub price: Option<Money>,
}

/// Where a reservation stands, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationState {
    /// Its units are reserved.
    Reserved,
    /// Its units were sold.
    Committed,
    /// Its units went back (or were never taken).
    Released,
}

impl ReservationState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "RESERVED",
            Self::Committed => "COMMITTED",
            Self::Released => "RELEASED",
        }
    }

    fn parse(text: &str) -> Result<Self, QueryError> {
        match text {
            "RESERVED" => Ok(Self::Reserved),
            "COMMITTED" => Ok(Self::Committed),
            "RELEASED" => Ok(Self::Released),
            _ => Err(QueryError::Decode {
                column: "status",
                message: "not a reservation status",
            }),
        }
    }
}

/// One line of a reservation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedLine {
    /// The product's SKU.
    pub sku: String,
    /// How many units.
    pub quantity: i64,
    /// `(currency, minor units)` of one unit when it was reserved; none for lines reserved before
    /// prices were recorded.
    pub unit_price: Option<(String, i64)>,
}

/// A reservation as stored, with its lines in SKU order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRecord {
    /// The order it is for.
    pub order_id: String,
    /// Its lines, in SKU order.
    pub lines: Vec<ReservedLine>,
    /// Where it stands.
    pub state: ReservationState,
    /// When a reserved one expires, in microseconds since the Unix epoch.
    pub expire_time: i64,
    /// Microseconds since the Unix epoch.
    pub create_time: i64,
    /// Microseconds since the Unix epoch.
    pub update_time: i64,
}

impl ReservationRecord {
    /// Whether its lines are exactly `lines` (`(sku, quantity)`, in SKU order): a retry of the
    /// same reservation, not another one under the same order id.
    pub fn holds(&self, lines: &[(String, i64)]) -> bool {
        self.lines
            .iter()
            .map(|line| (&line.sku, line.quantity))
            .eq(lines.iter().map(|(sku, quantity)| (sku, *quantity)))
    }
}

/// What a reservation attempt did.
#[derive(Debug)]
pub enum Reserved {
    /// This call reserved the stock.
    New(ReservationRecord),
    /// The order had a reservation (or a release) before; this is it.
    Existing(ReservationRecord),
    /// These SKUs have fewer units on hand than asked: nothing was reserved.
    Short(Vec<String>),
    /// No product has these SKUs: nothing was reserved.
    Unknown(Vec<String>),
}

/// What a commit attempt found.
#[derive(Debug)]
pub enum Committed {
    /// The reservation is committed (by this call or before).
    Done(ReservationRecord),
    /// It was released (or had expired) first.
    Released,
    /// The order has no reservation.
    Missing,
}

/// What a stock adjustment did.
#[derive(Debug)]
pub enum Adjusted {
    /// The product after it (also for a replay of the same key).
    Done(ProductRecord),
    /// The key was used before for a different adjustment.
    KeyReused,
    /// It would take the stock on hand below zero.
    Short,
    /// No product has the SKU.
    Missing,
}

/// Queries on the catalog's tables.
#[derive(Debug, Clone)]
pub struct CatalogStore {
    db: Database,
}

/// A `LIKE` pattern matching `text` anywhere, its wildcards escaped (with `\`).
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// What ListProducts' query is matched against.
fn search_text(sku: &str, name: &str, description: &str) -> String {
    format!("{sku}\n{name}\n{description}").to_lowercase()
}

impl CatalogStore {
    /// A store over `db`, which has [`MIGRATIONS`] applied.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Adds `product`; `false` when its SKU is taken.
    pub async fn create(&self, product: &NewProduct) -> Result<Option<ProductRecord>, QueryError> {
        let record = product.record(now_micros());
        match self.insert(&record, "").await {
            Ok(_) => Ok(Some(record)),
            Err(error) if error.is_unique_violation() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Adds each product whose SKU is not taken (the demo catalog); how many were added.
    pub async fn seed(&self, products: &[NewProduct]) -> Result<u64, QueryError> {
        let now = now_micros();
        let mut added = 0;
        for product in products {
            let record = product.record(now);
            added += self
                .insert(&record, " ON CONFLICT (sku) DO NOTHING")
                .await?;
        }
        Ok(added)
    }

    async fn insert(&self, record: &ProductRecord, on_conflict: &str) -> Result<u64, QueryError> {
        let sql = format!(
            "INSERT INTO products (sku, name, description, currency, price, on_hand, reserved, sold, search, create_time, update_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11){on_conflict}"
        );
        let search = search_text(&record.sku, &record.name, &record.description);
        self.db
            .execute(
                &sql,
                params![
                    &record.sku,
                    &record.name,
                    &record.description,
                    &record.currency,
                    record.price,
                    record.on_hand,
                    record.reserved,
                    record.sold,
                    &search,
                    record.create_time,
                    record.update_time,
                ],
            )
            .await
    }

    /// The product with `sku`.
    pub async fn get(&self, sku: &str) -> Result<Option<ProductRecord>, QueryError> {
        self.db
            .fetch_optional(select_products!("WHERE sku = $1"), params![sku], product)
            .await
    }

    /// The products with these SKUs (those that exist), in no particular order.
    pub async fn batch_get(&self, skus: &[String]) -> Result<Vec<ProductRecord>, QueryError> {
        let mut found = Vec::with_capacity(skus.len());
        // One query per chunk: both databases take a list of placeholders.
        for chunk in skus.chunks(100) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
            let sql = format!(
                "{} WHERE sku IN ({})",
                select_products!(""),
                placeholders.join(", ")
            );
            let params: Vec<_> = chunk.iter().map(orderly_kit::db::Param::from).collect();
            found.extend(self.db.fetch_all(&sql, &params, product).await?);
        }
        Ok(found)
    }

    /// Up to `limit` products after SKU `after` in SKU order, those whose text contains `query`
    /// (lower case) when it is not empty.
    pub async fn list(
        &self,
        query: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ProductRecord>, QueryError> {
        let pattern = contains_pattern(query);
        self.db
            .fetch_all(
                select_products!(
                    "WHERE ($1 = '' OR search LIKE $2 ESCAPE '\\') AND ($3 = '' OR sku > $3) ORDER BY sku LIMIT $4"
                ),
                params![query, &pattern, after.unwrap_or(""), i64::from(limit)],
                product,
            )
            .await
    }

    /// Changes the fields `change` sets; the product after it, or `None` when there is none.
    pub async fn update(
        &self,
        sku: &str,
        change: &ProductChange,
    ) -> Result<Option<ProductRecord>, QueryError> {
        let mut tx = self.db.begin().await?;
        let Some(current) = tx
            .fetch_optional(select_products!("WHERE sku = $1"), params![sku], product)
            .await?
        else {
            return Ok(None);
        };
        let name = change.name.as_deref().unwrap_or(&current.name);
        let description = change
            .description
            .as_deref()
            .unwrap_or(&current.description);
        let (currency, price) = change
            .price
            .map_or((current.currency.clone(), current.price), |p| {
                (p.currency().to_string(), p.minor())
            });
        let search = search_text(sku, name, description);
        let updated = tx
            .fetch_optional(
                "UPDATE products SET name = $2, description = $3, currency = $4, price = $5, search = $6, update_time = $7 \
                 WHERE sku = $1 \
                 RETURNING sku, name, description, currency, price, on_hand, reserved, sold, create_time, update_time",
                params![sku, name, description, &currency, price, &search, now_micros()],
                product,
            )
            .await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Adds `delta` units to `sku`'s stock on hand under `key`, once.
    pub async fn adjust(
        &self,
        sku: &str,
        delta: i64,
        key: &str,
        reason: &str,
    ) -> Result<Adjusted, QueryError> {
        let now = now_micros();
        let mut tx = self.db.begin().await?;
        let recorded = tx
            .execute(
                "INSERT INTO stock_adjustments (idempotency_key, sku, delta, reason, create_time) VALUES ($1, $2, $3, $4, $5)",
                params![key, sku, delta, reason, now],
            )
            .await;
        match recorded {
            Ok(_) => {}
            Err(error) if error.is_unique_violation() => {
                tx.rollback().await?;
                return self.adjustment_replayed(sku, delta, key).await;
            }
            // The SKU's product does not exist (the foreign key), or anything else.
            Err(error) => {
                tx.rollback().await?;
                return match self.get(sku).await? {
                    None => Ok(Adjusted::Missing),
                    Some(_) => Err(error),
                };
            }
        }
        let adjusted = tx
            .fetch_optional(
                "UPDATE products SET on_hand = on_hand + $2, update_time = $3 WHERE sku = $1 AND on_hand + $2 >= 0 \
                 RETURNING sku, name, description, currency, price, on_hand, reserved, sold, create_time, update_time",
                params![sku, delta, now],
                product,
            )
            .await?;
        match adjusted {
            Some(record) => {
                tx.commit().await?;
                Ok(Adjusted::Done(record))
            }
            None => {
                tx.rollback().await?;
                Ok(match self.get(sku).await? {
                    Some(_) => Adjusted::Short,
                    None => Adjusted::Missing,
                })
            }
        }
    }

    /// What a replayed adjustment key answers: the product now, if the key was used for the same
    /// adjustment.
    async fn adjustment_replayed(
        &self,
        sku: &str,
        delta: i64,
        key: &str,
    ) -> Result<Adjusted, QueryError> {
        let earlier = self
            .db
            .fetch_optional(
                "SELECT sku, delta FROM stock_adjustments WHERE idempotency_key = $1",
                params![key],
                |row| Ok((row.text("sku")?, row.int("delta")?)),
            )
            .await?;
        if earlier != Some((sku.to_owned(), delta)) {
            return Ok(Adjusted::KeyReused);
        }
        Ok(match self.get(sku).await? {
            Some(record) => Adjusted::Done(record),
            None => Adjusted::Missing,
        })
    }

    /// Reserves every line for `order_id` until `expire_time`, or nothing. `lines` must be in SKU
    /// order, each SKU once.
    pub async fn reserve(
        &self,
        order_id: &str,
        lines: &[(String, i64)],
        expire_time: i64,
    ) -> Result<Reserved, QueryError> {
        let now = now_micros();
        let mut tx = self.db.begin().await?;
        let claimed = tx
            .execute(
                "INSERT INTO reservations (order_id, status, expire_time, reason, create_time, update_time) \
                 VALUES ($1, 'RESERVED', $2, '', $3, $3)",
                params![order_id, expire_time, now],
            )
            .await;
        match claimed {
            Ok(_) => {}
            Err(error) if error.is_unique_violation() => {
                tx.rollback().await?;
                return match self.reservation(order_id).await? {
                    Some(existing) => Ok(Reserved::Existing(existing)),
                    None => Err(error),
                };
            }
            Err(error) => return Err(error),
        }
        // The lines first, each with its product's price now (a line that copies no product names
        // an unknown SKU), the stock last: the product rows, which concurrent orders of the same
        // products wait for, stay locked only for their update and the commit.
        let mut unknown = Vec::new();
        let mut reserved = Vec::with_capacity(lines.len());
        for (sku, quantity) in lines {
            let recorded = tx
                .fetch_optional(
                    "INSERT INTO reservation_lines (order_id, sku, quantity, currency, price) \
                     SELECT $1, sku, $3, currency, price FROM products WHERE sku = $2 \
                     RETURNING sku, quantity, currency, price",
                    params![order_id, sku, *quantity],
                    line,
                )
                .await?;
            match recorded {
                Some(line) => reserved.push(line),
                None => unknown.push(sku.clone()),
            }
        }
        if !unknown.is_empty() {
            tx.rollback().await?;
            return Ok(Reserved::Unknown(unknown));
        }
        let mut short = Vec::new();
        for (sku, quantity) in lines {
            let taken = tx
                .execute(
                    "UPDATE products SET on_hand = on_hand - $2, reserved = reserved + $2, update_time = $3 \
                     WHERE sku = $1 AND on_hand >= $2",
                    params![sku, *quantity, now],
                )
                .await?;
            if taken == 0 {
                short.push(sku.clone());
            }
        }
        if !short.is_empty() {
            tx.rollback().await?;
            return Ok(Reserved::Short(short));
        }
        tx.commit().await?;
        Ok(Reserved::New(ReservationRecord {
            order_id: order_id.to_owned(),
            lines: reserved,
            state: ReservationState::Reserved,
            expire_time,
            create_time: now,
            update_time: now,
        }))
    }

    /// The reservation of `order_id`, with its lines (written with it in one transaction, and never
    /// changed after, so two reads see them together).
    pub async fn reservation(
        &self,
        order_id: &str,
    ) -> Result<Option<ReservationRecord>, QueryError> {
        let Some(mut reservation) = self
            .db
            .fetch_optional(SELECT_RESERVATION, params![order_id], reservation)
            .await?
        else {
            return Ok(None);
        };
        reservation.lines = self
            .db
            .fetch_all(SELECT_LINES, params![order_id], line)
            .await?;
        Ok(Some(reservation))
    }

    /// Sells a reservation's units, unless it was released or has expired (then it is released
    /// now, as the sweeper would).
    pub async fn commit(&self, order_id: &str) -> Result<Committed, QueryError> {
        let now = now_micros();
        let mut tx = self.db.begin().await?;
        let changed = tx
            .execute(
                "UPDATE reservations SET status = 'COMMITTED', update_time = $2 \
                 WHERE order_id = $1 AND status = 'RESERVED' AND expire_time > $2",
                params![order_id, now],
            )
            .await?;
        if changed == 1 {
            let Some(reservation) = read_reservation(&mut tx, order_id).await? else {
                return Err(VANISHED);
            };
            move_units(&mut tx, &reservation.lines, "reserved", "sold", now).await?;
            tx.commit().await?;
            return Ok(Committed::Done(reservation));
        }
        tx.rollback().await?;
        match self.reservation(order_id).await? {
            None => Ok(Committed::Missing),
            Some(found) => match found.state {
                ReservationState::Committed => Ok(Committed::Done(found)),
                ReservationState::Released => Ok(Committed::Released),
                // Expired, not swept yet: release it now, and say so.
                ReservationState::Reserved => {
                    self.release_from(
                        order_id,
                        ReservationState::Reserved,
                        "expired",
                        Some(now_micros()),
                    )
                    .await?;
                    Ok(Committed::Released)
                }
            },
        }
    }

    /// Gives back a reservation's units, reserved or sold; when there is none, records the release
    /// so that it is never made. Returns the reservation, released.
    pub async fn release(
        &self,
        order_id: &str,
        reason: &str,
    ) -> Result<ReservationRecord, QueryError> {
        // Two rounds at most: a reservation made between finding none and recording the release
        // is released in the second.
        for _ in 0..2 {
            for state in [ReservationState::Reserved, ReservationState::Committed] {
                if let Some(released) = self.release_from(order_id, state, reason, None).await? {
                    return Ok(released);
                }
            }
            if let Some(found) = self.reservation(order_id).await?
                && found.state == ReservationState::Released
            {
                return Ok(found);
            }
            let now = now_micros();
            let recorded = self
                .db
                .execute(
                    "INSERT INTO reservations (order_id, status, expire_time, reason, create_time, update_time) \
                     VALUES ($1, 'RELEASED', $2, $3, $2, $2)",
                    params![order_id, now, reason],
                )
                .await;
            match recorded {
                Ok(_) => {
                    return Ok(ReservationRecord {
                        order_id: order_id.to_owned(),
                        lines: Vec::new(),
                        state: ReservationState::Released,
                        expire_time: now,
                        create_time: now,
                        update_time: now,
                    });
                }
                Err(error) if error.is_unique_violation() => continue,
                Err(error) => return Err(error),
            }
        }
        self.reservation(order_id).await?.ok_or(VANISHED)
    }

    /// Releases the reservation of `order_id` if it is in `state` (and, when `expired_by` is given,
    /// expired by then): its units go back on hand. `None` when it was not in that state.
    async fn release_from(
        &self,
        order_id: &str,
        state: ReservationState,
        reason: &str,
        expired_by: Option<i64>,
    ) -> Result<Option<ReservationRecord>, QueryError> {
        let now = now_micros();
        let mut tx = self.db.begin().await?;
        let changed = tx
            .execute(
                "UPDATE reservations SET status = 'RELEASED', reason = $3, update_time = $4 \
                 WHERE order_id = $1 AND status = $2 AND expire_time <= $5",
                params![
                    order_id,
                    state.as_str(),
                    reason,
                    now,
                    expired_by.unwrap_or(i64::MAX)
                ],
            )
            .await?;
        if changed == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let Some(reservation) = read_reservation(&mut tx, order_id).await? else {
            return Err(VANISHED);
        };
        let from = match state {
            ReservationState::Committed => "sold",
            _ => "reserved",
        };
        move_units(&mut tx, &reservation.lines, from, "on_hand", now).await?;
        tx.commit().await?;
        tracing::info!(%order_id, from, reason, "reservation released");
        Ok(Some(reservation))
    }

    /// Releases up to `limit` reservations that expired before `now`; how many.
    pub async fn release_expired(&self, now: i64, limit: u32) -> Result<usize, QueryError> {
        let expired = self
            .db
            .fetch_all(
                "SELECT order_id FROM reservations WHERE status = 'RESERVED' AND expire_time <= $1 \
                 ORDER BY expire_time LIMIT $2",
                params![now, i64::from(limit)],
                |row| row.text("order_id"),
            )
            .await?;
        let mut released = 0;
        for order_id in expired {
            let expired = self
                .release_from(&order_id, ReservationState::Reserved, "expired", Some(now))
                .await?;
            released += usize::from(expired.is_some());
        }
        Ok(released)
    }
}

/// Moves each line's units from one stock column of its product to another, in SKU order.
async fn move_units(
    tx: &mut Transaction,
    lines: &[ReservedLine],
    from: &str,
    to: &str,
    now: i64,
) -> Result<(), QueryError> {
    let sql = format!(
        "UPDATE products SET {from} = {from} - $2, {to} = {to} + $2, update_time = $3 WHERE sku = $1"
    );
    for line in lines {
        tx.execute(&sql, params![&line.sku, line.quantity, now])
            .await?;
    }
    Ok(())
}

const SELECT_RESERVATION: &str = "SELECT order_id, status, expire_time, create_time, update_time FROM reservations WHERE order_id = $1";
const SELECT_LINES: &str = "SELECT sku, quantity, currency, price FROM reservation_lines \
     WHERE order_id = $1 ORDER BY sku";

/// The reservation of `order_id` and its lines, read in `tx`.
async fn read_reservation(
    tx: &mut Transaction,
    order_id: &str,
) -> Result<Option<ReservationRecord>, QueryError> {
    let Some(mut found) = tx
        .fetch_optional(SELECT_RESERVATION, params![order_id], reservation)
        .await?
    else {
        return Ok(None);
    };
    found.lines = tx.fetch_all(SELECT_LINES, params![order_id], line).await?;
    Ok(Some(found))
}

fn reservation(row: &Row<'_>) -> Result<ReservationRecord, QueryError> {
    Ok(ReservationRecord {
        order_id: row.text("order_id")?,
        lines: Vec::new(),
        state: ReservationState::parse(&row.text("status")?)?,
        expire_time: row.int("expire_time")?,
        create_time: row.int("create_time")?,
        update_time: row.int("update_time")?,
    })
}

/// A reservation line; an empty currency is a line reserved before prices were recorded.
fn line(row: &Row<'_>) -> Result<ReservedLine, QueryError> {
    let currency = row.text("currency")?;
    Ok(ReservedLine {
        sku: row.text("sku")?,
        quantity: row.int("quantity")?,
        unit_price: if currency.is_empty() {
            None
        } else {
            Some((currency, row.int("price")?))
        },
    })
}

fn product(row: &Row<'_>) -> Result<ProductRecord, QueryError> {
    Ok(ProductRecord {
        sku: row.text("sku")?,
        name: row.text("name")?,
        description: row.text("description")?,
        currency: row.text("currency")?,
        price: row.int("price")?,
        on_hand: row.int("on_hand")?,
        reserved: row.int("reserved")?,
        sold: row.int("sold")?,
        create_time: row.int("create_time")?,
        update_time: row.int("update_time")?,
    })
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn query_wildcards_match_themselves() {
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(contains_pattern(""), "%%");
    }
}
