//! What the operations not yet linearized can still add to the state before a
//! given read: the lookahead's second question, after "is the state a prefix of
//! what the read saw".
//!
//! Some operations add tokens to the state and nothing else can (for the KV
//! store: an append adds the bytes of its value, see `Model::tokens`). Each
//! adds them once, when it is linearized. So for a completed read `r` not yet
//! linearized, the tokens the state can still gain before `r` are at most
//! those of the adders not linearized yet that were called by `r`'s return (one
//! called after `r` returned is linearized after `r`). Every adder linearized
//! so far was called by then too: the search places only calls that come
//! before the first return left, and `r`'s return is still left. So that
//! supply is the tokens of all adders called by `r`'s return, counted once
//! when the search starts, minus those of the adders linearized, counted as
//! they are placed and unplaced: a few additions per step, and a compare per
//! token a read still needs.
//!
//! With colliding values (appends of "1", "12", "2") a read of "30291" tells
//! the search little through prefixes alone while a put of "30" is left; but
//! once the one append of "29" is linearized on another base, no order of the
//! rest gives the read its "9"s, and the branch is refused where it starts
//! instead of after every order of the operations above it.

use std::cell::RefCell;

use crate::history::Operation;

/// Token counts per read are kept only while their table stays this small:
/// past it (a long history with a wide alphabet) there is no supply check and
/// the lookahead asks only about prefixes.
const TABLE_ENTRIES_MAX: usize = 1 << 22;

pub(super) struct Supply {
    /// Per byte: its slot in the counts, or `NONE` for a byte no adder adds.
    slot: [u8; 256],
    width: usize,
    /// The slots of the tokens each operation adds, one per token, operation
    /// after operation: those of operation `i` are `slots[adds[i]..adds[i + 1]]`.
    slots: Vec<u8>,
    adds: Vec<u32>,
    /// Per operation: its row in `called_by_return`, or `NO_ROW` for one the
    /// lookahead does not ask about.
    row: Vec<u32>,
    /// Rows of `width` counts: the tokens of every adder called by the read's
    /// return.
    called_by_return: Vec<u32>,
    /// The tokens of the adders linearized now.
    placed: Vec<u32>,
    /// Scratch counts of what one read needs, all zero between calls.
    need: RefCell<Vec<u32>>,
}

const NONE: u8 = u8::MAX;
const NO_ROW: u32 = u32::MAX;

/// Searches of fewer operations get no supply check: they are short whatever
/// order they try, and a long history cut into many of them would pay for a
/// table each (a quarter more memory on 100,000 operations over 16 keys).
const OPS_MIN: usize = 64;

/// Longer needs are taken as covered, unread: a bound on the check's cost per
/// read (a long history of unique values has long reads that it never refuses
/// while their prefix fits, and checking them all cost 20-40% more per step).
const COVERS_BYTES_MAX: usize = 64;

impl Supply {
    /// `tokens`: `Model::tokens` of the searched operations; `reads`: the
    /// operations the lookahead asks about. `None` when nothing adds tokens,
    /// the search is short (`OPS_MIN`), or the table would be too large.
    pub(super) fn new(
        ops: &[&Operation],
        tokens: &[Option<&[u8]>],
        reads: &[bool],
    ) -> Option<Self> {
        if ops.len() < OPS_MIN {
            return None;
        }
        let mut slot = [NONE; 256];
        let mut width = 0usize;
        for &byte in tokens.iter().flatten().flat_map(|tokens| tokens.iter()) {
            if slot[byte as usize] == NONE {
                // 255 distinct bytes at most get a slot: the last one is `NONE`.
                if width == NONE as usize {
                    return None;
                }
                slot[byte as usize] = width as u8;
                width += 1;
            }
        }
        let rows = reads.iter().filter(|&&read| read).count();
        if width == 0 || rows.saturating_mul(width) > TABLE_ENTRIES_MAX {
            return None;
        }
        let total: usize = tokens.iter().flatten().map(|tokens| tokens.len()).sum();
        if u32::try_from(total).is_err() || u32::try_from(rows).is_err() {
            return None;
        }
        let mut slots = Vec::with_capacity(total);
        let mut adds = Vec::with_capacity(ops.len() + 1);
        adds.push(0);
        for bytes in tokens.iter() {
            slots.extend(
                bytes
                    .iter()
                    .flat_map(|b| b.iter())
                    .map(|&b| slot[b as usize]),
            );
            adds.push(slots.len() as u32);
        }
        // Sweep the reads by return and the adders by call, counting as they go.
        let mut adders: Vec<usize> = (0..ops.len()).filter(|&i| tokens[i].is_some()).collect();
        adders.sort_by_key(|&i| (ops[i].call, i));
        let mut by_return: Vec<usize> = (0..ops.len())
            .filter(|&i| reads[i] && ops[i].ret.is_some())
            .collect();
        by_return.sort_by_key(|&i| (ops[i].ret, i));
        let mut counts = vec![0u32; width];
        let mut next_adder = adders.iter().peekable();
        let mut row = vec![NO_ROW; ops.len()];
        let mut called_by_return = Vec::with_capacity(by_return.len() * width);
        for (at, &read) in by_return.iter().enumerate() {
            let ret = ops[read].ret;
            while let Some(&&adder) = next_adder.peek() {
                if Some(ops[adder].call) > ret {
                    break;
                }
                for &token in &slots[adds[adder] as usize..adds[adder + 1] as usize] {
                    counts[token as usize] += 1;
                }
                next_adder.next();
            }
            row[read] = at as u32;
            called_by_return.extend_from_slice(&counts);
        }
        Some(Supply {
            slot,
            width,
            slots,
            adds,
            row,
            called_by_return,
            placed: vec![0; width],
            need: RefCell::new(vec![0; width]),
        })
    }

    /// Bytes held, for the memory budget.
    pub(super) fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.slots.len()
            + (self.adds.len() + self.row.len() + self.called_by_return.len() + 2 * self.width)
                * std::mem::size_of::<u32>()
    }

    /// `op` is linearized.
    pub(super) fn place(&mut self, op: usize) {
        let (start, end) = (self.adds[op] as usize, self.adds[op + 1] as usize);
        for &token in &self.slots[start..end] {
            self.placed[token as usize] += 1;
        }
    }

    /// `op` is no longer linearized.
    pub(super) fn unplace(&mut self, op: usize) {
        let (start, end) = (self.adds[op] as usize, self.adds[op + 1] as usize);
        for &token in &self.slots[start..end] {
            self.placed[token as usize] -= 1;
        }
    }

    /// Can the adders not linearized add every token of `bytes` before `read`
    /// (counted with multiplicity)? True for an operation without a row.
    pub(super) fn covers(&self, read: usize, bytes: &[u8]) -> bool {
        let row = self.row[read] as usize;
        if self.row[read] == NO_ROW {
            return true;
        }
        if bytes.len() > COVERS_BYTES_MAX {
            return true;
        }
        let left = &self.called_by_return[row * self.width..(row + 1) * self.width];
        let mut need = self.need.borrow_mut();
        let mut covered = true;
        let mut counted = 0;
        for &byte in bytes {
            let slot = self.slot[byte as usize];
            if slot == NONE {
                covered = false;
                break;
            }
            let slot = slot as usize;
            need[slot] += 1;
            counted += 1;
            // Every adder linearized was called by the read's return, so
            // `placed` never exceeds `left`; were it to, nothing is refused.
            let supply = left[slot].checked_sub(self.placed[slot]);
            debug_assert!(supply.is_some(), "an adder placed after the read returned");
            if supply.is_some_and(|supply| need[slot] > supply) {
                covered = false;
                break;
            }
        }
        for &byte in &bytes[..counted] {
            need[self.slot[byte as usize] as usize] = 0;
        }
        covered
    }
}
