//! Enums written as lowercase words: in flags, config files, reports and
//! on the wire. [`words!`] declares one with its spelling beside each
//! variant, and derives `as_str`, `Display` and `FromStr` from that one
//! list, so a word is written down once.

/// `words! { pub enum Name { Variant = "word", ... } }`: the enum plus
/// `ALL`, `as_str`, `Display` and a `FromStr` whose error is the reason
/// only ("expected one of a, b, c"), so the flag parser and the config
/// loader can each put their own subject in front of it.
macro_rules! words {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $word:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            #[allow(dead_code)]
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<$name, String> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $crate::words::expected(&[$($word),+]))
            }
        }
    };
}

pub(crate) use words;

/// "expected a or b", "expected one of a, b, c".
pub fn expected(words: &[&str]) -> String {
    match words {
        [a, b] => format!("expected {a} or {b}"),
        _ => format!("expected one of {}", words.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    words! {
        enum Color {
            Red = "red",
            Dark = "dark-blue",
        }
    }

    words! {
        enum Size {
            S = "s",
            M = "m",
            L = "l",
        }
    }

    #[test]
    fn words_round_trip_and_refusals_list_them() {
        for c in Color::ALL {
            assert_eq!(c.as_str().parse::<Color>(), Ok(*c));
        }
        assert_eq!(Color::Dark.to_string(), "dark-blue");
        assert_eq!(
            "blue".parse::<Color>(),
            Err("expected red or dark-blue".into())
        );
        assert_eq!("xl".parse::<Size>(), Err("expected one of s, m, l".into()));
        assert_eq!("m".parse::<Size>(), Ok(Size::M));
    }
}
