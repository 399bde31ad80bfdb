//! A parsed [`Event`] → one record (or the book message), per event type.

use super::*;

pub(super) fn trade(cx: &Cx<'_>, ev: &Event<'_>, id: u64, batch: &mut Batch) -> FrameOutcome {
    let (Some(raw_symbol), Some(p), Some(q), Some(t), Some(m)) =
        (ev.symbol, ev.price, ev.quantity, ev.time, ev.buyer_is_maker)
    else {
        return FrameOutcome::Malformed(Malformed::WrongType);
    };
    let (Some(price), Some(quantity)) = (decimal(p), decimal(q)) else {
        return FrameOutcome::Malformed(Malformed::InvalidNumber);
    };
    let Some(symbol) = cx.instruments.normalize(raw_symbol) else {
        return FrameOutcome::Malformed(Malformed::UnknownSymbol);
    };
    let venue = cx.venue;
    let receive_ns = cx.receive_ns;
    let pushed = batch.push_with::<()>(receive_ns, |bump| {
        Ok(Record::Trade(Trade {
            venue,
            symbol: bump.alloc_str(symbol),
            raw_symbol: bump.alloc_str(raw_symbol),
            trade_id: TradeId::Num(id),
            price,
            quantity,
            side: if m { Side::Sell } else { Side::Buy },
            contracts: None,
            is_maker: Some(m),
            trade_ts_ms: t,
            seq: Some(id),
            backfilled: false,
            ts_ms: ev.event_time.unwrap_or(t),
            receive_ts_ns: receive_ns,
        }))
    });
    match pushed {
        Ok(()) => FrameOutcome::Records(1),
        Err(()) => FrameOutcome::Malformed(Malformed::WrongType),
    }
}

/// `depthUpdate` → `book` (levels were written during the parse).
pub(super) fn depth(
    cx: &Cx<'_>,
    ev: &Event<'_>,
    bad_level: bool,
    book: &mut BookMsg,
) -> FrameOutcome {
    let (Some(raw_symbol), Some(first), Some(last), Field::Levels, Field::Levels) =
        (ev.symbol, ev.first_update, ev.last_update, ev.b, ev.a)
    else {
        return FrameOutcome::Malformed(Malformed::WrongType);
    };
    // USDⓈ-M continuity is `pu == previous u`: without it the book cannot sync.
    if cx.venue == VenueId::BinanceDerivatives && ev.prev_update.is_none() {
        return FrameOutcome::Malformed(Malformed::WrongType);
    }
    if bad_level {
        return FrameOutcome::Malformed(Malformed::InvalidNumber);
    }
    if cx.instruments.get(raw_symbol).is_none() {
        return FrameOutcome::Malformed(Malformed::UnknownSymbol);
    }
    book.raw_symbol.push_str(raw_symbol);
    book.snapshot = false;
    book.first_id = first;
    book.last_id = last;
    book.prev_id = ev.prev_update;
    book.ts_ms = ev.event_time.unwrap_or(cx.receive_ns / 1_000_000);
    FrameOutcome::Book
}

/// `bookTicker`: spot sends no time at all (→ receive time), USDⓈ-M sends `E`.
pub(super) fn ticker(cx: &Cx<'_>, ev: &Event<'_>, batch: &mut Batch) -> FrameOutcome {
    let (Some(raw_symbol), Some(u), Field::Str(b), Some(bq), Field::Str(a), Some(aq)) = (
        ev.symbol,
        ev.last_update,
        ev.b,
        ev.bid_qty,
        ev.a,
        ev.ask_qty,
    ) else {
        return FrameOutcome::Malformed(Malformed::WrongType);
    };
    let (Some(bid), Some(bid_qty), Some(ask), Some(ask_qty)) =
        (decimal(b), decimal(bq), decimal(a), decimal(aq))
    else {
        return FrameOutcome::Malformed(Malformed::InvalidNumber);
    };
    let Some(symbol) = cx.instruments.normalize(raw_symbol) else {
        return FrameOutcome::Malformed(Malformed::UnknownSymbol);
    };
    let (venue, receive_ns) = (cx.venue, cx.receive_ns);
    let ts_ms = ev.event_time.unwrap_or(receive_ns / 1_000_000);
    push(batch, receive_ns, |bump| {
        Record::Ticker(Ticker {
            origin: Origin {
                venue,
                symbol: bump.alloc_str(symbol),
                raw_symbol: bump.alloc_str(raw_symbol),
                ts_ms,
                receive_ts_ns: receive_ns,
            },
            bid_price: Some(bid),
            bid_quantity: Some(bid_qty),
            ask_price: Some(ask),
            ask_quantity: Some(ask_qty),
            last_price: None,
            update_id: Some(u),
        })
    })
}

/// `markPriceUpdate`: `r` is the rate settled at `T` (the next funding time).
pub(super) fn funding(cx: &Cx<'_>, ev: &Event<'_>, batch: &mut Batch) -> FrameOutcome {
    let (Some(raw_symbol), Some(r), Some(e)) = (ev.symbol, ev.funding_rate, ev.event_time) else {
        return FrameOutcome::Malformed(Malformed::WrongType);
    };
    // Delivery contracts (in `!markPrice@arr`) carry `"r":""`: no funding.
    if r.is_empty() {
        return FrameOutcome::Ignored;
    }
    let Some(rate) = signed_decimal(r) else {
        return FrameOutcome::Malformed(Malformed::InvalidNumber);
    };
    let (mark, index) = match (opt_decimal(ev.price), opt_decimal(ev.index_price)) {
        (Ok(m), Ok(i)) => (m, i),
        _ => return FrameOutcome::Malformed(Malformed::InvalidNumber),
    };
    let Some(symbol) = cx.instruments.normalize(raw_symbol) else {
        return FrameOutcome::Malformed(Malformed::UnknownSymbol);
    };
    let (venue, receive_ns) = (cx.venue, cx.receive_ns);
    let next = ev.time.filter(|&t| t > 0);
    push(batch, receive_ns, |bump| {
        Record::Funding(FundingRate {
            origin: Origin {
                venue,
                symbol: bump.alloc_str(symbol),
                raw_symbol: bump.alloc_str(raw_symbol),
                ts_ms: e,
                receive_ts_ns: receive_ns,
            },
            funding_rate: rate,
            estimated_rate: None,
            funding_ts_ms: None,
            next_funding_ts_ms: next,
            mark_price: mark,
            index_price: index,
        })
    })
}

/// `forceOrder`: `S` is the liquidation **order** side (a SELL closes a long).
/// Price: the average fill price `ap` where it is non-zero (what was actually
/// paid, and what MarketPrism publishes), else the order price `p`.
pub(super) fn liquidation(cx: &Cx<'_>, ev: &Event<'_>, batch: &mut Batch) -> FrameOutcome {
    let Some(o) = &ev.order else {
        return FrameOutcome::Malformed(Malformed::WrongType);
    };
    let (Some(raw_symbol), Some(s), Some(p), Some(q), Some(t)) =
        (o.symbol, o.side, o.price, o.quantity, o.time)
    else {
        return FrameOutcome::Malformed(Malformed::WrongType);
    };
    let (side, position_side) = match s {
        "SELL" => (Side::Sell, "long"),
        "BUY" => (Side::Buy, "short"),
        _ => return FrameOutcome::Malformed(Malformed::WrongType),
    };
    let (Some(order_price), Some(quantity), Ok(avg)) =
        (decimal(p), decimal(q), opt_decimal(o.avg_price))
    else {
        return FrameOutcome::Malformed(Malformed::InvalidNumber);
    };
    let price = match avg {
        Some(ap) if !ap.is_zero() => ap,
        _ => order_price,
    };
    let Some(symbol) = cx.instruments.normalize(raw_symbol) else {
        return FrameOutcome::Malformed(Malformed::UnknownSymbol);
    };
    let (venue, receive_ns) = (cx.venue, cx.receive_ns);
    let ts_ms = ev.event_time.unwrap_or(t);
    push(batch, receive_ns, |bump| {
        Record::Liquidation(Liquidation {
            origin: Origin {
                venue,
                symbol: bump.alloc_str(symbol),
                raw_symbol: bump.alloc_str(raw_symbol),
                ts_ms,
                receive_ts_ns: receive_ns,
            },
            side,
            position_side: Some(position_side),
            price,
            quantity,
            contracts: None,
            liquidation_ts_ms: t,
        })
    })
}
