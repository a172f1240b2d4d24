//! Data loss prevention: finding identifiers in text that should not travel carelessly. Each
//! detector pairs a pattern with the check that the identifier itself carries (Luhn for card
//! numbers, mod 97 for IBANs, the allocation rules of National Insurance numbers), so a random
//! run of digits is not reported. Findings are counts per detector: the matched values are
//! client content and are never kept, logged or audited.
//!
//! Text is scanned in pieces as it streams (see [`Scanner`]); a piece keeps the tail of the
//! previous one so that an identifier split across two reads is still found once.

use regex::Regex;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// What a detector looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Detector {
    /// UK National Insurance number (`QQ 12 34 56 C`).
    NationalInsurance,
    /// Payment card number (13 to 19 digits, Luhn-valid, a known issuer prefix).
    PaymentCard,
    /// International bank account number (country length and mod-97 checked).
    Iban,
    /// UK sort code followed closely by an 8-digit account number.
    SortCodeAccount,
    /// Passport number next to the word "passport", or a passport's machine-readable zone.
    Passport,
}

impl Detector {
    pub const ALL: [Detector; 5] = [
        Detector::NationalInsurance,
        Detector::PaymentCard,
        Detector::Iban,
        Detector::SortCodeAccount,
        Detector::Passport,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Detector::NationalInsurance => "national_insurance",
            Detector::PaymentCard => "payment_card",
            Detector::Iban => "iban",
            Detector::SortCodeAccount => "sort_code_account",
            Detector::Passport => "passport",
        }
    }

    pub fn parse(s: &str) -> crate::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| crate::Error::invalid("detector", format!("unknown detector {s:?}")))
    }
}

/// How many of each identifier a text holds.
pub type Findings = BTreeMap<Detector, u32>;

/// The patterns, compiled once. They are constants: failing to compile is a bug found by the
/// first test run, never by input.
fn re(pattern: &str) -> Regex {
    #[allow(clippy::expect_used)]
    Regex::new(pattern).expect("a constant DLP pattern compiles")
}

static NINO: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)\b([A-Z])([A-Z]) ?(\d{2}) ?(\d{2}) ?(\d{2}) ?([A-D])\b"));
/// 13 to 19 digits, optionally in groups split by single spaces or hyphens.
static CARD: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d(?:[ -]?\d){12,18}\b"));
static IBAN: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)\b([A-Z]{2})(\d{2})((?: ?[A-Z0-9]){11,30})\b"));
static SORT_ACCOUNT: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d{2}[- ]\d{2}[- ]\d{2}\b[^\d]{0,40}?\b\d{8}\b"));
static PASSPORT: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)\bpassport(?:\s+(?:no\.?|number|num\.?|#))?\s*[:#]?\s*([A-Z0-9]{6,9})\b|\bP<[A-Z<]{3}[A-Z<]{20,41}")
});

/// Count the identifiers in `text`.
pub fn scan(text: &str) -> Findings {
    let mut found = Findings::new();
    for (d, _) in matches(text) {
        *found.entry(d).or_default() += 1;
    }
    found
}

/// Every identifier in `text` with the byte offset where it ends.
fn matches(text: &str) -> Vec<(Detector, usize)> {
    let mut out = Vec::new();
    out.extend(
        NINO.captures_iter(text)
            .filter(|c| c.get(1).zip(c.get(2)).is_some_and(|(a, b)| nino_ok(a.as_str(), b.as_str())))
            .filter_map(|c| c.get(0))
            .map(|m| (Detector::NationalInsurance, m.end())),
    );
    out.extend(CARD.find_iter(text).filter(|m| card_ok(m.as_str())).map(|m| (Detector::PaymentCard, m.end())));
    out.extend(IBAN.find_iter(text).filter_map(|m| iban_end(m.as_str()).map(|e| (Detector::Iban, m.start() + e))));
    out.extend(SORT_ACCOUNT.find_iter(text).map(|m| (Detector::SortCodeAccount, m.end())));
    out.extend(
        PASSPORT
            .captures_iter(text)
            .filter(|c| c.get(1).is_none_or(|n| n.as_str().chars().any(|ch| ch.is_ascii_digit())))
            .filter_map(|c| c.get(0))
            .map(|m| (Detector::Passport, m.end())),
    );
    out
}

/// National Insurance prefixes: neither letter D, F, I, Q, U or V; the second not O; and not
/// one of the prefixes never issued.
fn nino_ok(first: &str, second: &str) -> bool {
    let (a, b) = (first.to_ascii_uppercase(), second.to_ascii_uppercase());
    let banned = |c: &str| ["D", "F", "I", "Q", "U", "V"].contains(&c);
    !banned(&a)
        && !banned(&b)
        && b != "O"
        && !["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"].contains(&format!("{a}{b}").as_str())
}

/// A card number: Luhn-valid and starting like a card scheme's numbers.
fn card_ok(candidate: &str) -> bool {
    let digits: Vec<u32> = candidate.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) || !luhn(&digits) {
        return false;
    }
    let prefix = |n: usize| digits.iter().take(n).fold(0u32, |acc, d| acc * 10 + d);
    let p2 = prefix(2);
    let p3 = prefix(3);
    let p4 = prefix(4);
    p2 / 10 == 4 // Visa
        || (51..=55).contains(&p2) || (2221..=2720).contains(&p4) // Mastercard
        || p2 == 34 || p2 == 37 // American Express
        || p4 == 6011 || p2 == 65 || (644..=649).contains(&p3) // Discover
        || p2 == 35 // JCB
        || p2 == 36 || p2 == 38 || (300..=305).contains(&p3) // Diners Club
        || p2 == 62 // UnionPay
        || [5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763].contains(&p4) // Maestro
}

/// The Luhn check (ISO/IEC 7812).
pub fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// IBAN lengths by country (ISO 13616 registry), for the countries a UK firm meets most and all
/// of SEPA. A country not listed is not reported (fewer false alarms).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AT", 20),
    ("BE", 16),
    ("BG", 22),
    ("CH", 21),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("EE", 20),
    ("ES", 24),
    ("FI", 18),
    ("FR", 27),
    ("GB", 22),
    ("GI", 23),
    ("GR", 27),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IS", 26),
    ("IT", 27),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MT", 31),
    ("NL", 18),
    ("NO", 15),
    ("PL", 28),
    ("PT", 25),
    ("RO", 24),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("VA", 22),
    ("AE", 23),
    ("IL", 23),
    ("SA", 24),
    ("TR", 26),
    ("UA", 29),
    ("GG", 22),
    ("JE", 22),
    ("IM", 22),
];

/// Where an IBAN at the start of `candidate` ends: the country's length of letters and digits
/// (spaces between groups allowed), not running on into a longer token, with mod 97 = 1
/// (ISO 7064). `None` if there is none.
fn iban_end(candidate: &str) -> Option<usize> {
    let country = candidate.get(..2)?.to_ascii_uppercase();
    let &(_, len) = IBAN_LENGTHS.iter().find(|(c, _)| *c == country)?;
    let mut compact = String::with_capacity(len);
    let mut end = 0;
    for (i, c) in candidate.char_indices() {
        if compact.len() == len {
            break;
        }
        if c.is_ascii_alphanumeric() {
            compact.push(c.to_ascii_uppercase());
            end = i + 1;
        }
    }
    let runs_on = candidate[end..].chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    (compact.len() == len && !runs_on && iban_checksum_ok(&compact)).then_some(end)
}

/// Whether an IBAN (letters and digits only, upper case) is well-formed and has mod 97 = 1.
pub fn iban_checksum_ok(compact: &str) -> bool {
    if compact.len() < 5 || !compact.chars().all(|c| c.is_ascii_alphanumeric()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let Some(v) = c.to_digit(36) else { return false };
        // Letters count as two digits (A = 10 … Z = 35).
        rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
    }
    rem == 1
}

/// A streaming scanner: feed text as it arrives; each identifier is counted once even if it
/// straddles two pieces.
///
/// An identifier is counted by where it ends. Matches ending in the last [`HOLD`] bytes of the
/// text so far wait for the next piece (more digits may follow and make it something else);
/// the text kept between pieces ([`CARRY`] bytes) is longer than any identifier plus that
/// margin, so each is seen whole in one scan and counted in exactly one.
#[derive(Debug, Default)]
pub struct Scanner {
    /// The end of the text seen so far.
    carry: String,
    /// Offset in `carry` up to which match ends have been counted.
    counted: usize,
    found: Findings,
}

const HOLD: usize = 64;
const CARRY: usize = 256;

impl Scanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Scan the next piece.
    pub fn feed(&mut self, piece: &str) {
        self.carry.push_str(piece);
        let safe = self.carry.len().saturating_sub(HOLD);
        self.count(safe);
        // Keep the tail for the next piece, on a character boundary.
        let mut cut = self.carry.len().saturating_sub(CARRY).min(self.counted);
        while !self.carry.is_char_boundary(cut) {
            cut -= 1;
        }
        self.carry.drain(..cut);
        self.counted -= cut;
    }

    /// Count what is left and return the findings.
    pub fn finish(mut self) -> Findings {
        let end = self.carry.len();
        self.count(end);
        self.found
    }

    /// Count matches ending after what was counted and at or before `until`.
    fn count(&mut self, until: usize) {
        if until <= self.counted {
            return;
        }
        for (d, end) in matches(&self.carry) {
            if end > self.counted && end <= until {
                *self.found.entry(d).or_default() += 1;
            }
        }
        self.counted = until;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(d: Detector, text: &str) -> u32 {
        scan(text).get(&d).copied().unwrap_or(0)
    }

    #[test]
    fn national_insurance_numbers_follow_the_allocation_rules() {
        assert_eq!(one(Detector::NationalInsurance, "NI: AB 12 34 56 C."), 1);
        assert_eq!(one(Detector::NationalInsurance, "ni jg103759a"), 1);
        for bad in ["QQ123456C", "AO123456C", "GB123456A", "AB123456E", "AB1234567C", "XAB123456C"] {
            assert_eq!(one(Detector::NationalInsurance, bad), 0, "{bad}");
        }
    }

    #[test]
    fn card_numbers_need_luhn_and_a_scheme_prefix() {
        assert_eq!(one(Detector::PaymentCard, "card 4111 1111 1111 1111 exp 12/29"), 1);
        assert_eq!(one(Detector::PaymentCard, "5555-5555-5555-4444"), 1);
        assert_eq!(one(Detector::PaymentCard, "amex 378282246310005"), 1);
        // Luhn fails; Luhn passes but no scheme starts with 9; too short; a phone number.
        for bad in ["4111 1111 1111 1112", "9111111111111111", "411111111111", "+44 20 7946 0958"] {
            assert_eq!(one(Detector::PaymentCard, bad), 0, "{bad}");
        }
    }

    #[test]
    fn ibans_need_the_country_length_and_mod_97() {
        assert_eq!(one(Detector::Iban, "pay GB82 WEST 1234 5698 7654 32 today"), 1);
        assert_eq!(one(Detector::Iban, "DE89370400440532013000"), 1);
        assert_eq!(one(Detector::Iban, "fr1420041010050500013m02606"), 1);
        for bad in ["GB82WEST12345698765433", "GB82WEST123456987654", "XX82WEST12345698765432"] {
            assert_eq!(one(Detector::Iban, bad), 0, "{bad}");
        }
    }

    #[test]
    fn sort_codes_count_only_with_an_account_number() {
        assert_eq!(one(Detector::SortCodeAccount, "sort code 20-00-00, account 55779911"), 1);
        assert_eq!(one(Detector::SortCodeAccount, "20 00 00 / 55779911"), 1);
        assert_eq!(one(Detector::SortCodeAccount, "the meeting on 20-11-26 was brief"), 0);
    }

    #[test]
    fn passports_by_keyword_or_machine_readable_zone() {
        assert_eq!(one(Detector::Passport, "Passport No: 123456789"), 1);
        assert_eq!(one(Detector::Passport, "passport number GB1234567"), 1);
        assert_eq!(one(Detector::Passport, "P<GBRSMITH<<JOHN<<<<<<<<<<<<<<<<<<<<<<<<<<<"), 1);
        assert_eq!(one(Detector::Passport, "bring your passport to the meeting"), 0);
    }

    #[test]
    fn plain_prose_finds_nothing() {
        let text = "The completion date is 12/03/2027; the price is 450000 GBP; call 020 7946 0958.";
        assert!(scan(text).is_empty(), "{:?}", scan(text));
    }

    /// However the text is cut into pieces, the streaming scanner counts what one scan does.
    #[test]
    fn streaming_counts_each_identifier_once() {
        let text = "a 4111 1111 1111 1111 b GB82 WEST 1234 5698 7654 32 c AB 12 34 56 C d ".repeat(7);
        let expected = scan(&text);
        assert_eq!(expected.get(&Detector::PaymentCard), Some(&7));
        for size in [1, 5, 13, 64, 200, 10_000] {
            let mut s = Scanner::new();
            let bytes: Vec<char> = text.chars().collect();
            for piece in bytes.chunks(size) {
                s.feed(&piece.iter().collect::<String>());
            }
            assert_eq!(s.finish(), expected, "pieces of {size}");
        }
    }
}
