//! A tiny JSON tree for structure-aware mutation. Numbers and strings keep
//! their exact source text (a number is not round-tripped through f64, a
//! string keeps its escapes) and objects keep key order and duplicates, so an
//! unmutated tree writes back byte for byte.

#[derive(Clone, Debug, PartialEq)]
pub enum J {
    Null,
    Bool(bool),
    /// The number's text as written (may be deliberately invalid JSON).
    Num(String),
    /// The string's body between the quotes, escapes as written.
    Str(String),
    Arr(Vec<J>),
    /// Keys are raw string bodies too.
    Obj(Vec<(String, J)>),
}

/// Parses one JSON document (whole input, surrounding whitespace allowed).
pub fn parse(s: &str) -> Option<J> {
    let mut p = P {
        b: s.as_bytes(),
        i: 0,
        depth: 0,
    };
    let v = p.value()?;
    p.ws();
    (p.i == p.b.len()).then_some(v)
}

struct P<'a> {
    b: &'a [u8],
    i: usize,
    depth: u32,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    fn value(&mut self) -> Option<J> {
        self.ws();
        // Seeds are shallow; a bound keeps a hostile seed from recursing away.
        if self.depth > 512 {
            return None;
        }
        match *self.b.get(self.i)? {
            b'{' => {
                self.i += 1;
                self.depth += 1;
                let mut out = Vec::new();
                if self.eat(b'}').is_none() {
                    loop {
                        self.ws();
                        let k = self.string()?;
                        self.eat(b':')?;
                        out.push((k, self.value()?));
                        if self.eat(b',').is_none() {
                            self.eat(b'}')?;
                            break;
                        }
                    }
                }
                self.depth -= 1;
                Some(J::Obj(out))
            }
            b'[' => {
                self.i += 1;
                self.depth += 1;
                let mut out = Vec::new();
                if self.eat(b']').is_none() {
                    loop {
                        out.push(self.value()?);
                        if self.eat(b',').is_none() {
                            self.eat(b']')?;
                            break;
                        }
                    }
                }
                self.depth -= 1;
                Some(J::Arr(out))
            }
            b'"' => self.string().map(J::Str),
            b't' => self.lit("true", J::Bool(true)),
            b'f' => self.lit("false", J::Bool(false)),
            b'n' => self.lit("null", J::Null),
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                while self.i < self.b.len()
                    && matches!(
                        self.b[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                Some(J::Num(self.text(start, self.i)))
            }
            _ => None,
        }
    }

    fn lit(&mut self, word: &str, v: J) -> Option<J> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word.as_bytes()).then(|| {
            self.i = end;
            v
        })
    }

    /// At an opening quote: the body up to the closing one, escapes kept.
    fn string(&mut self) -> Option<String> {
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        let start = self.i + 1;
        let mut i = start;
        loop {
            match *self.b.get(i)? {
                b'"' => break,
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
        self.i = i + 1;
        Some(self.text(start, i))
    }

    fn text(&self, a: usize, b: usize) -> String {
        String::from_utf8_lossy(&self.b[a..b]).into_owned()
    }
}

pub fn write(j: &J, out: &mut String) {
    match j {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Num(n) => out.push_str(n),
        J::Str(s) => {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
        J::Arr(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(v, out);
            }
            out.push(']');
        }
        J::Obj(o) => {
            out.push('{');
            for (i, (k, v)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('"');
                out.push_str(k);
                out.push_str("\":");
                write(v, out);
            }
            out.push('}');
        }
    }
}

pub fn to_string(j: &J) -> String {
    let mut s = String::new();
    write(j, &mut s);
    s
}

/// Nodes in the tree (pre-order count, the root included).
pub fn count(j: &J) -> usize {
    1 + match j {
        J::Arr(a) => a.iter().map(count).sum(),
        J::Obj(o) => o.iter().map(|(_, v)| count(v)).sum(),
        _ => 0,
    }
}

/// Deepest nesting of arrays and objects (a scalar is 0).
pub fn depth(j: &J) -> usize {
    match j {
        J::Arr(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        J::Obj(o) => 1 + o.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
        _ => 0,
    }
}

/// The `k`-th node in pre-order (0 = root).
pub fn nth_mut(j: &mut J, k: usize) -> Option<&mut J> {
    fn go<'a>(j: &'a mut J, k: &mut usize) -> Option<&'a mut J> {
        if *k == 0 {
            return Some(j);
        }
        *k -= 1;
        match j {
            J::Arr(a) => a.iter_mut().find_map(|v| go(v, k)),
            J::Obj(o) => o.iter_mut().find_map(|(_, v)| go(v, k)),
            _ => None,
        }
    }
    let mut k = k;
    go(j, &mut k)
}

/// Visits every node (pre-order) with the key it sits under, if any.
pub fn walk<'a>(j: &'a J, key: Option<&'a str>, f: &mut dyn FnMut(Option<&'a str>, &'a J)) {
    f(key, j);
    match j {
        J::Arr(a) => a.iter().for_each(|v| walk(v, None, f)),
        J::Obj(o) => o.iter().for_each(|(k, v)| walk(v, Some(k), f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_exactly() {
        for s in [
            r#"{"a":[1,2.50,-0,1e400],"b":"x\"y\u0041","a":null,"c":{"d":[true,false,{}]}}"#,
            "[]",
            r#""s""#,
            "12.000",
        ] {
            assert_eq!(to_string(&parse(s).unwrap()), s);
        }
        assert!(parse("{").is_none());
        assert!(parse("pong").is_none());
    }
}
