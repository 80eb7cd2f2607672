// A fixed identity, so that seeds sealed to it (see scripts/fuzz.sh) get past the
// header MAC and the mutations reach the payload.
pub const IDENTITY: &str = "AGE-SECRET-KEY-1VV3HAACTD9KN60J7CZWQ8SJSZ2XJDX3SKHDMFLCY7EVFDDTQ99PSQTKPV3";
