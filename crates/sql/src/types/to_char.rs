//! `to_char` (PostgreSQL's formatting.c) for timestamps, dates, intervals and numbers: the common
//! template patterns.

use super::datetime::{date2j, Tm};
use super::Numeric;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn cased(word: &str, pat: &str) -> String {
    let first_upper = pat.chars().next().is_some_and(|c| c.is_ascii_uppercase());
    let second_upper = pat.chars().nth(1).is_some_and(|c| c.is_ascii_uppercase());
    if first_upper && second_upper {
        word.to_ascii_uppercase()
    } else if first_upper {
        word.to_string()
    } else {
        word.to_ascii_lowercase()
    }
}

/// Format broken-down time `tm` with `fmt`. `interval` selects interval semantics (hours not
/// wrapped, no day-of-week).
pub fn format_tm(tm: &Tm, fmt: &str, interval: bool) -> String {
    let mut out = String::new();
    let b = fmt.as_bytes();
    let mut i = 0;
    let jd = date2j(tm.year, tm.month, tm.day);
    let dow = usize::try_from((jd + 1).rem_euclid(7)).unwrap_or(0);
    let doy = jd - date2j(tm.year, 1, 1) + 1;
    while i < b.len() {
        let rest = &fmt[i..];
        let mut fm = false;
        let mut r = rest;
        if r.len() >= 2 && r[..2].eq_ignore_ascii_case("FM") {
            fm = true;
            r = &r[2..];
        }
        let skip = i + (rest.len() - r.len());
        let num = |v: i64, width: usize| {
            if fm {
                v.to_string()
            } else if v < 0 {
                format!("-{:0w$}", -v, w = width)
            } else {
                format!("{v:0width$}")
            }
        };
        let up = r.to_ascii_uppercase();
        let starts = |p: &str| up.starts_with(p);
        let (text, len) = if starts("HH24") {
            (num(i64::from(tm.hour), 2), 4)
        } else if starts("HH12") || starts("HH") {
            let h = if interval {
                tm.hour
            } else {
                match tm.hour % 12 {
                    0 => 12,
                    h => h,
                }
            };
            (num(i64::from(h), 2), if starts("HH12") { 4 } else { 2 })
        } else if starts("MI") {
            (num(i64::from(tm.minute), 2), 2)
        } else if starts("SSSS") {
            (
                num(i64::from(tm.hour * 3600 + tm.minute * 60 + tm.second), 1),
                4,
            )
        } else if starts("SS") {
            (num(i64::from(tm.second), 2), 2)
        } else if starts("MS") {
            (num(i64::from(tm.usec / 1000), 3), 2)
        } else if starts("US") {
            (num(i64::from(tm.usec), 6), 2)
        } else if starts("A.M.") || starts("P.M.") {
            let pm = tm.hour >= 12;
            let s = if pm { "P.M." } else { "A.M." };
            (
                if r.starts_with(|c: char| c.is_ascii_lowercase()) {
                    s.to_ascii_lowercase()
                } else {
                    s.to_string()
                },
                4,
            )
        } else if starts("AM") || starts("PM") {
            let pm = tm.hour >= 12;
            let s = if pm { "PM" } else { "AM" };
            (
                if r.starts_with(|c: char| c.is_ascii_lowercase()) {
                    s.to_ascii_lowercase()
                } else {
                    s.to_string()
                },
                2,
            )
        } else if starts("YYYY") {
            (num(i64::from(tm.year), 4), 4)
        } else if starts("YYY") {
            (num(i64::from(tm.year % 1000), 3), 3)
        } else if starts("YY") {
            (num(i64::from(tm.year % 100), 2), 2)
        } else if starts("Y") {
            (num(i64::from(tm.year % 10), 1), 1)
        } else if starts("MONTH") {
            let m = cased(MONTHS[(tm.month.clamp(1, 12) - 1) as usize], r);
            (if fm { m } else { format!("{m:<9}") }, 5)
        } else if starts("MON") {
            let m = MONTHS[(tm.month.clamp(1, 12) - 1) as usize];
            (cased(&m[..3], r), 3)
        } else if starts("MM") {
            (num(i64::from(tm.month), 2), 2)
        } else if starts("DAY") {
            let d = cased(DAYS[dow], r);
            (if fm { d } else { format!("{d:<9}") }, 3)
        } else if starts("DY") {
            (cased(&DAYS[dow][..3], r), 2)
        } else if starts("DDD") {
            (num(i64::from(doy), 3), 3)
        } else if starts("DD") {
            (num(i64::from(tm.day), 2), 2)
        } else if starts("D") {
            (num(dow as i64 + 1, 1), 1)
        } else if starts("WW") {
            (num(i64::from((doy - 1) / 7 + 1), 2), 2)
        } else if starts("Q") {
            (num(i64::from((tm.month - 1) / 3 + 1), 1), 1)
        } else if starts("J") {
            (num(i64::from(jd), 1), 1)
        } else if starts("CC") {
            let cc = if tm.year > 0 {
                (tm.year + 99) / 100
            } else {
                -((99 - (tm.year - 1)) / 100)
            };
            (num(i64::from(cc), 2), 2)
        } else {
            // Literal text: "quoted", backslash escapes, or one character.
            let c = fmt[i..].chars().next().unwrap_or(' ');
            if c == '"' {
                let mut j = i + 1;
                let mut lit = String::new();
                let chars: Vec<char> = fmt[j..].chars().collect();
                let mut k = 0;
                while k < chars.len() && chars[k] != '"' {
                    if chars[k] == '\\' && k + 1 < chars.len() {
                        k += 1;
                    }
                    lit.push(chars[k]);
                    j += chars[k].len_utf8();
                    k += 1;
                }
                out.push_str(&lit);
                i = (j + 1).min(fmt.len());
                continue;
            }
            out.push(c);
            i += c.len_utf8();
            continue;
        };
        out.push_str(&text);
        i = skip + len;
    }
    out
}

/// `to_char(numeric, fmt)` for the patterns `9`, `0`, `.`/`D`, `,`/`G`, `FM`, `S`, `MI`.
pub fn format_number(v: &Numeric, fmt: &str) -> String {
    let up = fmt.to_ascii_uppercase();
    let fm = up.contains("FM");
    let body: String = up.replace("FM", "");
    let explicit_sign = body.contains('S') || body.contains("MI");
    let body = body.replace("MI", "").replace('S', "");
    let (int_pat, frac_pat) = match body.find(['.', 'D']) {
        Some(p) => (&body[..p], Some(&body[p + 1..])),
        None => (body.as_str(), None),
    };
    let frac_n = frac_pat.map_or(0, |f| f.chars().filter(|c| matches!(c, '9' | '0')).count());
    let int_n = int_pat.chars().filter(|c| matches!(c, '9' | '0')).count();
    let rounded = v.round(i32::try_from(frac_n).unwrap_or(0));
    let neg = rounded.to_text().starts_with('-');
    let text = rounded.abs().to_text();
    let (int_digits, frac_digits) = match text.split_once('.') {
        Some((a, b)) => (a.to_string(), b.to_string()),
        None => (text.clone(), String::new()),
    };
    let last_int_zero = int_pat.chars().rev().find(|c| matches!(c, '9' | '0')) == Some('0');
    let int_digits = if int_digits == "0" && !last_int_zero {
        String::new()
    } else {
        int_digits
    };
    let overflow = int_digits.len() > int_n;
    // Integer part.
    let mut int_out = String::new();
    let mut blanks = 0;
    let mut started = false;
    let mut pos = 0;
    let lead = int_n.saturating_sub(int_digits.len());
    let digits: Vec<char> = int_digits.chars().collect();
    for c in int_pat.chars() {
        match c {
            '9' | '0' => {
                if overflow {
                    int_out.push('#');
                    started = true;
                } else if pos < lead {
                    if c == '0' || started {
                        int_out.push('0');
                        started = true;
                    } else {
                        blanks += 1;
                    }
                } else {
                    int_out.push(digits[pos - lead]);
                    started = true;
                }
                pos += 1;
            }
            ',' | 'G' => {
                if started {
                    int_out.push(',');
                } else {
                    blanks += 1;
                }
            }
            other => int_out.push(other),
        }
    }
    let mut out = " ".repeat(blanks);
    out.push(if neg {
        '-'
    } else if explicit_sign {
        '+'
    } else {
        ' '
    });
    out.push_str(&int_out);
    if let Some(fp) = frac_pat {
        out.push('.');
        let fd: Vec<char> = frac_digits.chars().collect();
        let mut k = 0;
        let mut frac_out = String::new();
        let mut trailing_nines = 0;
        for c in fp.chars() {
            match c {
                '9' | '0' => {
                    let d = if overflow {
                        '#'
                    } else {
                        fd.get(k).copied().unwrap_or('0')
                    };
                    frac_out.push(d);
                    if c == '9' && d == '0' {
                        trailing_nines += 1;
                    } else {
                        trailing_nines = 0;
                    }
                    k += 1;
                }
                other => frac_out.push(other),
            }
        }
        if fm {
            frac_out.truncate(frac_out.len() - trailing_nines);
        }
        out.push_str(&frac_out);
    }
    if fm {
        let t = out.trim_start().to_string();
        let t = if !neg && !explicit_sign {
            t.trim_start().to_string()
        } else {
            t
        };
        return t;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        let n = |s: &str| Numeric::parse(s).unwrap();
        assert_eq!(format_number(&n("1234.5"), "9999.99"), " 1234.50");
        assert_eq!(format_number(&n("1234.5"), "FM9,999.00"), "1,234.50");
        assert_eq!(format_number(&n("-12"), "999"), " -12");
        assert_eq!(format_number(&n("0.5"), "0.99"), " 0.50");
        assert_eq!(format_number(&n("42"), "00000"), " 00042");
        assert_eq!(format_number(&n("3.14159"), "FM990.00"), "3.14");
    }

    #[test]
    fn datetimes() {
        let tm = Tm {
            year: 2024,
            month: 5,
            day: 7,
            hour: 13,
            minute: 5,
            second: 9,
            usec: 0,
        };
        assert_eq!(
            format_tm(&tm, "YYYY-MM-DD HH24:MI:SS", false),
            "2024-05-07 13:05:09"
        );
        assert_eq!(
            format_tm(&tm, "DD/MM/YY HH12:MI AM", false),
            "07/05/24 01:05 PM"
        );
        assert_eq!(
            format_tm(&tm, "Day, DD Month YYYY", false),
            "Tuesday  , 07 May       2024"
        );
        assert_eq!(format_tm(&tm, "FMDay FMDD FMMonth", false), "Tuesday 7 May");
        assert_eq!(
            format_tm(&tm, "Dy Mon D DDD WW Q", false),
            "Tue May 3 128 19 2"
        );
    }
}
