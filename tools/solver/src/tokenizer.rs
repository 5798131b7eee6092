//! Byte-level BPE trained on the training repositories' source, stored as HF `tokenizer.json`.
//!
//! Byte level means any text encodes (no unknown token) and decoding gives the text back byte
//! for byte. The special tokens mark the prompt sections and the edit format; they are whole
//! tokens, so a source file that happens to contain `<|edit|>` still encodes them as one id.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

/// Special tokens, in id order (they take ids 0..).
pub const SPECIAL_TOKENS: [&str; 8] = [PAD, EOS, PROBLEM, CODE, EDIT, SEARCH, REPLACE, END];
pub const PAD: &str = "<|pad|>";
pub const EOS: &str = "<|eos|>";
/// Starts the problem statement.
pub const PROBLEM: &str = "<|problem|>";
/// Starts a code window (`<|code|>path`, then numbered lines).
pub const CODE: &str = "<|code|>";
/// Starts a candidate edit (`<|edit|>LINE`).
pub const EDIT: &str = "<|edit|>";
pub const SEARCH: &str = "<|search|>";
pub const REPLACE: &str = "<|replace|>";
/// Ends a candidate edit.
pub const END: &str = "<|end|>";

/// The solver's tokenizer, with the ids of the special tokens looked up once.
#[derive(Clone)]
pub struct SolverTokenizer {
    inner: Tokenizer,
    pub pad: u32,
    pub eos: u32,
    pub edit: u32,
    pub end: u32,
}

impl std::fmt::Debug for SolverTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SolverTokenizer(vocab {})", self.vocab_size())
    }
}

impl SolverTokenizer {
    /// Trains a byte-level BPE of `vocab_size` tokens on `texts`.
    pub fn train<I, S>(texts: I, vocab_size: usize) -> Result<SolverTokenizer>
    where
        I: Iterator<Item = S> + Send,
        S: AsRef<str> + Send,
    {
        let min_vocab = SPECIAL_TOKENS.len() + 256;
        if vocab_size <= min_vocab {
            bail!(
                "the vocabulary must hold more than {min_vocab} tokens (256 bytes and the special tokens)"
            );
        }
        let specials = SPECIAL_TOKENS
            .iter()
            .map(|t| AddedToken::from(*t, true))
            .collect();
        let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(2)
            .show_progress(false)
            .special_tokens(specials)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build()
            .into();
        let mut tokenizer = Tokenizer::new(BPE::default());
        tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, false, true)));
        tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
        tokenizer
            .train(&mut trainer, texts)
            .map_err(|e| anyhow!("training the tokenizer: {e}"))?;
        SolverTokenizer::wrap(tokenizer)
    }

    /// Reads an HF `tokenizer.json`; it must define the special tokens above.
    pub fn load(path: &Path) -> Result<SolverTokenizer> {
        let inner = Tokenizer::from_file(path)
            .map_err(|e| anyhow!("{}: not a tokenizer.json: {e}", path.display()))?;
        SolverTokenizer::wrap(inner).with_context(|| format!("{}", path.display()))
    }

    fn wrap(inner: Tokenizer) -> Result<SolverTokenizer> {
        let id = |token: &str| {
            inner
                .token_to_id(token)
                .ok_or_else(|| anyhow!("the tokenizer has no special token {token}"))
        };
        for token in SPECIAL_TOKENS {
            id(token)?;
        }
        Ok(SolverTokenizer {
            pad: id(PAD)?,
            eos: id(EOS)?,
            edit: id(EDIT)?,
            end: id(END)?,
            inner,
        })
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        self.inner
            .save(path, false)
            .map_err(|e| anyhow!("writing {}: {e}", path.display()))
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.inner
            .encode_fast(text, false)
            .expect("byte-level BPE encodes any text")
            .get_ids()
            .to_vec()
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner
            .decode(ids, false)
            .expect("ids come from this tokenizer")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Vec<String> {
        let code = "def add(a, b):\n    return a + b\n\nclass Box:\n    def __init__(self, items):\n        self.items = list(items)\n";
        (0..20).map(|i| format!("{code}# file {i}\n")).collect()
    }

    #[test]
    fn round_trips_code_with_unicode_and_special_tokens() {
        let tokenizer = SolverTokenizer::train(corpus().into_iter(), 400).unwrap();
        let text = "x = 'héllo ☃'\n\tif a<=b:  return\r\n<|edit|>12\n";
        let ids = tokenizer.encode(text);
        assert_eq!(tokenizer.decode(&ids), text);
        assert!(
            ids.contains(&tokenizer.edit),
            "special tokens are single ids"
        );
    }

    #[test]
    fn saves_and_loads_as_tokenizer_json() {
        let tokenizer = SolverTokenizer::train(corpus().into_iter(), 400).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        tokenizer.save(&path).unwrap();
        let loaded = SolverTokenizer::load(&path).unwrap();
        let text = "def add(a, b):\n    return a + b\n";
        assert_eq!(loaded.encode(text), tokenizer.encode(text));
        assert_eq!(loaded.vocab_size(), tokenizer.vocab_size());
        assert!(
            tokenizer.encode(text).len() < text.len() / 2,
            "merges were learned"
        );
    }

    #[test]
    fn training_is_deterministic() {
        let a = SolverTokenizer::train(corpus().into_iter(), 400).unwrap();
        let b = SolverTokenizer::train(corpus().into_iter(), 400).unwrap();
        let text = "class Box:\n    def __init__(self, items):\n";
        assert_eq!(a.encode(text), b.encode(text));
    }
}
