//! A small SCIM filter parser (RFC 7644 §3.4.2.2): comparisons joined by `and`/`or`, with
//! parentheses and `not`. Enough for the filters Qlik's users and licence endpoints accept.

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
    Pr,
}

/// A parsed filter.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Filter {
    Cmp { attr: String, op: Op, value: String },
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Open,
    Close,
}

fn tokenize(s: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Token::Open);
            }
            ')' => {
                chars.next();
                out.push(Token::Close);
            }
            '"' => {
                chars.next();
                let mut v = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e) => v.push(e),
                            None => return Err("unterminated string".into()),
                        },
                        Some(c) => v.push(c),
                        None => return Err("unterminated string".into()),
                    }
                }
                out.push(Token::Str(v));
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' || c == '"' {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                out.push(Token::Word(w));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Token::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.pos += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.atom()?;
        while self.peek_word("and") {
            self.pos += 1;
            left = Filter::And(Box::new(left), Box::new(self.atom()?));
        }
        Ok(left)
    }

    fn atom(&mut self) -> Result<Filter, String> {
        if self.peek_word("not") {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.atom()?)));
        }
        match self.tokens.get(self.pos).cloned() {
            Some(Token::Open) => {
                self.pos += 1;
                let inner = self.or()?;
                if self.tokens.get(self.pos) != Some(&Token::Close) {
                    return Err("missing `)`".into());
                }
                self.pos += 1;
                Ok(inner)
            }
            Some(Token::Word(attr)) => {
                self.pos += 1;
                let op = match self.tokens.get(self.pos) {
                    Some(Token::Word(op)) => match op.to_ascii_lowercase().as_str() {
                        "eq" => Op::Eq,
                        "ne" => Op::Ne,
                        "co" => Op::Co,
                        "sw" => Op::Sw,
                        "ew" => Op::Ew,
                        "gt" => Op::Gt,
                        "ge" => Op::Ge,
                        "lt" => Op::Lt,
                        "le" => Op::Le,
                        "pr" => Op::Pr,
                        other => return Err(format!("unknown operator `{other}`")),
                    },
                    _ => return Err(format!("expected an operator after `{attr}`")),
                };
                self.pos += 1;
                if op == Op::Pr {
                    return Ok(Filter::Cmp { attr, op, value: String::new() });
                }
                let value = match self.tokens.get(self.pos) {
                    Some(Token::Str(v)) | Some(Token::Word(v)) => v.clone(),
                    _ => return Err(format!("expected a value after `{attr}`")),
                };
                self.pos += 1;
                Ok(Filter::Cmp { attr, op, value })
            }
            Some(t) => Err(format!("unexpected {t:?}")),
            None => Err("unexpected end of filter".into()),
        }
    }
}

/// Parses `s`, or says what is wrong with it.
pub(crate) fn parse(s: &str) -> Result<Filter, String> {
    let mut p = Parser { tokens: tokenize(s)?, pos: 0 };
    let f = p.or()?;
    if p.pos != p.tokens.len() {
        return Err(format!("unexpected {:?}", p.tokens[p.pos]));
    }
    Ok(f)
}

impl Filter {
    /// Evaluates the filter; `attr` maps an attribute name to the record's value (`None` if
    /// absent) or fails for an attribute the endpoint does not support.
    pub(crate) fn eval<F>(&self, attr: &F) -> Result<bool, String>
    where
        F: Fn(&str) -> Result<Option<String>, String>,
    {
        Ok(match self {
            Filter::And(a, b) => a.eval(attr)? && b.eval(attr)?,
            Filter::Or(a, b) => a.eval(attr)? || b.eval(attr)?,
            Filter::Not(a) => !a.eval(attr)?,
            Filter::Cmp { attr: name, op, value } => {
                let actual = attr(name)?;
                let Some(actual) = actual else { return Ok(*op == Op::Ne) };
                let a = actual.to_lowercase();
                let v = value.to_lowercase();
                match op {
                    Op::Eq => a == v,
                    Op::Ne => a != v,
                    Op::Co => a.contains(&v),
                    Op::Sw => a.starts_with(&v),
                    Op::Ew => a.ends_with(&v),
                    Op::Gt => a > v,
                    Op::Ge => a >= v,
                    Op::Lt => a < v,
                    Op::Le => a <= v,
                    Op::Pr => true,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_precedence_and_parentheses() {
        let f = parse(r#"status eq "active" or (status eq "disabled" and name co "ö")"#).unwrap();
        let record = |status: &'static str, name: &'static str| {
            move |a: &str| -> Result<Option<String>, String> {
                match a {
                    "status" => Ok(Some(status.into())),
                    "name" => Ok(Some(name.into())),
                    _ => Err(format!("unsupported {a}")),
                }
            }
        };
        assert!(f.eval(&record("active", "x")).unwrap());
        assert!(f.eval(&record("disabled", "Björn Ö")).unwrap());
        assert!(!f.eval(&record("disabled", "Anna")).unwrap());
        assert!(parse("status eq").is_err());
        assert!(parse(r#"(status eq "a""#).is_err());
        assert!(parse(r#"status zz "a""#).is_err());
    }
}
