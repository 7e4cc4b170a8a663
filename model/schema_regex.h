// The `pattern` keyword of a JSON schema: a regular expression (the ECMAScript subset
// schemas use) turned into grammar rules for the content of a JSON string, each matched
// character written as JSON needs it (`"` as \", control characters escaped).
//
// Supported: literals, `.`, classes `[a-z_]` and `[^…]` over ASCII, \d \w \s \D \W \S and
// escaped punctuation, groups `( )` and `(?: )`, `|`, and the quantifiers * + ? {n} {n,}
// {n,m} (a lazy `?` after one changes nothing here). `^` and `$` at the ends are
// accepted (a generated string is exactly one match, which satisfies both an anchored
// and an unanchored pattern). Anything else — backreferences, lookarounds, non-ASCII in a
// class — is an error naming it. `.` and negated classes produce printable ASCII only:
// a subset of what they match, so the string still matches.
#pragma once

#include <string>
#include <string_view>

#include "model/grammar.h"

namespace hearth::model {

Result<GrammarBuilder::Seq> pattern_grammar(GrammarBuilder& b, std::string_view pattern);

}  // namespace hearth::model
