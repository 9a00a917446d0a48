// `sattn completions bash|zsh|fish`: shell completion scripts generated from the CLI11 option
// tree of every tool, so the scripts can never drift from the options (tests compare them
// with the committed completions/ files).
#include <CLI/CLI.hpp>
#include <iostream>
#include <map>
#include <set>

#include "cli/cli.hpp"
#include "sattn/error.hpp"
#include "sattn/backend.hpp"
#include "sattn/op.hpp"

namespace sattn {

namespace {

struct OptionInfo {
  std::vector<std::string> names;  // "--spec", "-o", ...
  std::string description;
  bool takes_value = false;
  std::string values;  // space-separated choices; "@dir" / "@file" for paths; "" = free text
  bool list = false;   // a comma-separated list (CLI11 delimiter ','): `--specs bsr,sl<TAB>` completes the last item
};

struct ToolInfo {
  std::string name, summary;
  std::vector<OptionInfo> options;
  bool takes_files = false;  // has a positional argument (op files)
  // Choices of the first positional argument (`profile list|show|validate`, `completions bash`),
  // and what later positionals are: "@file" (files) or "@profile" (profile names).
  std::string first_positional;
  std::string rest = "@file";
};

// Value choices of options whose names mean the same thing in every tool, except where `tool`
// takes other values (select's cost model targets every backend; run runs on its own list).
std::string choices_for(const std::string& long_name, const std::string& tool = "") {
  if (tool == "run" && long_name == "backend") {  // the registry's names (the deprecated aliases are not offered)
    std::string s;
    for (const Backend* b : backend_registry()) s += std::string(b->name()) + " ";
    return s + "all";
  }
  if (tool == "run" && long_name == "check") return "auto full sample none";
  if (tool == "profile" && long_name == "action") return "list show validate";
  if (tool == "profile" && long_name == "names") return "@profile";
  if (long_name == "spec" || long_name == "specs" || long_name == "force-spec" || long_name == "disable") {
    std::string s;
    for (Spec sp : kAllSpecs) s += (s.empty() ? "" : " ") + std::string(to_string(sp));
    return s;
  }
  static const std::map<std::string, std::string> fixed = {
      {"backend", "cpu rvv rocc imc"}, {"format", "json text"}, {"precision", "fp32 bf16 i8 i4"},
      {"data", "@dir"},          {"out-dir", "@dir"},     {"output", "@file"}, {"out-stem", "@file"},
      {"shell", "bash zsh fish"},       {"profile", "@profile"},  {"kernel", "rvv scalar autovec"},
      {"vlen", "128 256 512 1024"},     {"lanes", "8 16 32"},     {"layout", "bhsd bshd"},
      {"precisions", "fp32 bf16 i8 i4"}, {"vlens", "128 256 512 1024"}, {"kernels", "rvv scalar autovec"},
  };
  auto it = fixed.find(long_name);
  return it == fixed.end() ? "" : it->second;
}

}  // namespace

// The tools that are also executables of their own (tools/sattn-TOOL/main.cpp): their completions
// are the tool's, with the tool's options from the first word on. tests/cli/completions.sh checks
// this list against the sattn-* executables built.
const std::vector<std::string>& standalone_tools() {
  static const std::vector<std::string> names = {"select", "emit", "run-rvv", "sim", "calibrate", "imc", "eval", "model"};
  return names;
}

namespace {

std::string standalone_commands() {
  std::string s;
  for (const std::string& t : standalone_tools()) s += " sattn-" + t;
  return s;
}

std::vector<ToolInfo> collect_tools() {
  std::vector<ToolInfo> tools;
  for (const Tool& t : tool_table()) {
    CLI::App app(t.summary, t.name);
    app.set_help_flag("-h,--help", "Show this help and exit");
    app.set_version_flag("--version", std::string(), "Print the version (and the git revision it was built from) and exit");
    t.configure(app);
    ToolInfo info{t.name, t.summary, {}, false, "", "@file"};
    for (const CLI::Option* opt : app.get_options()) {
      if (!opt->nonpositional()) {
        const std::string values = choices_for(opt->get_name(), t.name);
        if (values == "@profile") {
          info.rest = values;
        } else if (!values.empty()) {
          info.first_positional = values;
        } else {
          info.takes_files = true;
        }
        continue;
      }
      OptionInfo o;
      for (const auto& l : opt->get_lnames()) o.names.push_back("--" + l);
      for (const auto& s : opt->get_snames()) o.names.push_back("-" + s);
      o.description = opt->get_description();
      o.takes_value = opt->get_items_expected_max() > 0 && opt->get_type_size() != 0;
      if (!opt->get_lnames().empty()) o.values = choices_for(opt->get_lnames().front(), t.name);
      o.list = o.takes_value && opt->get_delimiter() == ',';
      info.options.push_back(std::move(o));
    }
    tools.push_back(std::move(info));
  }
  return tools;
}

// sattn-opt (sattn-opt(1), built with MLIR) is no CLI11 tool: its options are MLIR's. These are
// its passes and pipelines and the mlir-opt options its page documents; tests/cli/completions.sh
// checks them against `sattn-opt --help` where it is built.
struct OptFlag {
  std::string_view name, description;
  bool takes_value;  // -o FILE, -pass-pipeline=...; the passes take `=OPTIONS`
};
constexpr OptFlag kSattnOptFlags[] = {
    {"-sattn-select-spec", "Select a spec for every sattn.sparse_attention op (as sattn-select)", false},
    {"-sattn-lower-rvv", "Rewrite sattn.sparse_attention into sattn.rvv_call", false},
    {"-sattn-lower-rocc", "Rewrite sattn.sparse_attention into sattn.rocc_call", false},
    {"-sattn-to-rvv", "Pipeline: sattn-select-spec for rvv, then sattn-lower-rvv", false},
    {"-sattn-to-rocc", "Pipeline: sattn-select-spec for rocc, then sattn-lower-rocc", false},
    {"-pass-pipeline", "A textual pass pipeline, e.g. builtin.module(sattn-lower-rvv)", true},
    {"-mlir-print-op-generic", "Print the generic form", false},
    {"-split-input-file", "Process each // ----- chunk on its own", false},
    {"-verify-diagnostics", "Check diagnostics against expected-* comments", false},
    {"-verify-each", "Verify the module after each pass (true/false)", true},
    {"-o", "Write the module to FILE", true},
    {"--help", "Show the options", false},
    {"--version", "Show the LLVM/MLIR version", false},
};
// The options of the passes (-sattn-select-spec='backend=rvv prefer-sw').
constexpr std::string_view kSattnOptPassOptions = "backend= prefer-bsr prefer-sw l1-bytes= force-spec= disable= profile=";

std::string single_quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string bash_script(const std::vector<ToolInfo>& tools) {
  std::string names;
  for (const auto& t : tools) names += t.name + " ";
  std::string s =
      "# bash completion for sattn and its tools (sattn-select, ...). Generated by `sattn completions bash`;\n"
      "# do not edit. Installed under each command's name, for bash-completion's on-demand loading.\n"
      "_sattn_words() {  # complete one of the words $1\n"
      "  COMPREPLY=($(compgen -P \"$pre\" -W \"$1\" -- \"$cur\"))\n"
      "}\n"
      "_sattn_list() {  # a comma-separated list of the words $1: complete the item after the last comma\n"
      "  local head=\n"
      "  [[ $cur == *,* ]] && head=${cur%,*},\n"
      "  COMPREPLY=($(compgen -P \"$pre$head\" -W \"$1\" -- \"${cur##*,}\"))\n"
      "  compopt -o nospace 2>/dev/null || true\n"
      "}\n"
      "_sattn() {\n"
      "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd=${COMP_WORDS[0]##*/} tool base=1 pre=\n"
      "  COMPREPLY=()\n"
      "  if [[ $cmd == sattn-* ]]; then  # sattn-select ...: the tool's options from the first word on\n"
      "    tool=${cmd#sattn-} base=0\n"
      "  elif [[ $COMP_CWORD -eq 1 ]]; then\n"
      "    COMPREPLY=($(compgen -W '" + names + "help --help --version' -- \"$cur\"))\n"
      "    return\n"
      "  else\n"
      "    tool=${COMP_WORDS[1]}\n"
      "  fi\n"
      "  # --opt=VALUE: bash splits the word at '=' (COMP_WORDBREAKS) into \"--opt\" \"=\" \"VALUE\"; where '='\n"
      "  # is no word break, the word is \"--opt=VALUE\" and the choices keep the \"--opt=\" prefix.\n"
      "  if [[ $cur == = && $prev == -* ]]; then\n"
      "    cur=\n"
      "  elif [[ $prev == = && $COMP_CWORD -ge 2 && ${COMP_WORDS[COMP_CWORD-2]} == -* ]]; then\n"
      "    prev=${COMP_WORDS[COMP_CWORD-2]}\n"
      "  elif [[ $cur == --*=* ]]; then\n"
      "    prev=${cur%%=*} pre=${cur%%=*}= cur=${cur#*=}\n"
      "  fi\n"
      "  case $tool in\n"
      "    help) _sattn_words '" + names + "' ;;\n";
  for (const auto& t : tools) {
    s += "    " + t.name + ")\n      case $prev in\n";
    std::string flags;
    for (const auto& o : t.options) {
      std::string pattern;
      for (const auto& n : o.names) {
        pattern += (pattern.empty() ? "" : "|") + n;
        flags += n + " ";
      }
      if (!o.takes_value) continue;
      std::string action = o.values == "@dir"    ? "COMPREPLY=($(compgen -P \"$pre\" -d -- \"$cur\"))"
                           : o.values == "@file" ? "COMPREPLY=($(compgen -P \"$pre\" -f -- \"$cur\"))"
                           : o.values == "@profile"
                               ? "_sattn_words \"$(sattn profile list -q 2>/dev/null)\""
                           : o.values.empty()    ? ":"
                           : o.list              ? "_sattn_list '" + o.values + "'"
                                                 : "_sattn_words '" + o.values + "'";
      s += "        " + pattern + ") " + action + "; return ;;\n";
    }
    s += "      esac\n";
    s += "      if [[ -n $pre ]]; then\n        return  # --flag=VALUE of a flag that takes none\n";
    s += "      elif [[ $cur == -* ]]; then\n        COMPREPLY=($(compgen -W '" + flags + "' -- \"$cur\"))\n";
    if (!t.first_positional.empty())
      s += "      elif [[ $COMP_CWORD -eq $((base + 1)) ]]; then\n        _sattn_words '" + t.first_positional + "'\n";
    if (t.rest == "@profile")
      s += "      else\n        _sattn_words \"$(sattn profile list -q 2>/dev/null)\"\n";
    else if (t.takes_files)
      s += "      else\n        COMPREPLY=($(compgen -f -- \"$cur\"))\n";
    s += "      fi ;;\n";
  }
  s += "  esac\n}\ncomplete -o filenames -F _sattn sattn" + standalone_commands() + "\n";
  std::string opt_flags;
  for (const OptFlag& f : kSattnOptFlags) opt_flags += std::string(f.name) + " ";
  s += "# sattn-opt (built with MLIR): its passes, pipelines and main mlir-opt options.\n"
       "_sattn_opt() {\n"
       "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
       "  COMPREPLY=()\n"
       "  if [[ $prev == = && ${COMP_WORDS[COMP_CWORD-2]} == -sattn-* ]]; then\n"
       "    COMPREPLY=($(compgen -W '" + std::string(kSattnOptPassOptions) + "' -- \"$cur\")); compopt -o nospace; return\n"
       "  elif [[ $prev == -o ]]; then\n"
       "    COMPREPLY=($(compgen -f -- \"$cur\")); return\n"
       "  elif [[ $cur == -* ]]; then\n"
       "    COMPREPLY=($(compgen -W '" + opt_flags + "' -- \"$cur\")); return\n"
       "  fi\n"
       "  COMPREPLY=($(compgen -f -- \"$cur\"))\n"
       "}\n"
       "complete -o filenames -F _sattn_opt sattn-opt\n";
  return s;
}

std::string zsh_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '[' || c == ']' || c == ':' || c == '\\') out += '\\';
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return out;
}

std::string zsh_script(const std::vector<ToolInfo>& tools) {
  std::string s = "#compdef sattn sattn-opt" + standalone_commands() + "\n" +
      "# zsh completion for sattn and its tools (sattn-select, ...). Generated by `sattn completions zsh`;\n"
      "# do not edit.\n"
      "_sattn_tool() {  # the options of tool $1 (words[1] is the tool, or the sattn-TOOL command)\n"
      "  case $1 in\n";
  for (const auto& t : tools) {
    s += "    " + t.name + ")\n      _arguments -s \\\n";
    for (const auto& o : t.options) {
      std::string action;
      if (o.takes_value)
        action = o.values == "@dir"       ? ":dir:_directories"
                 : o.values == "@file"    ? ":file:_files"
                 : o.values == "@profile" ? ":profile:(${(f)\"$(sattn profile list -q 2>/dev/null)\"})"
                 : o.values.empty()       ? ":value: "
                 : o.list                 ? ":value:_values -s , value " + o.values
                                          : ":value:(" + o.values + ")";
      // A value may follow in the same word (--format=json, -ojson) or in the next one.
      std::string names, group;
      for (const auto& n : o.names) {
        names += (names.empty() ? "" : ",") + n + (o.takes_value ? (n.rfind("--", 0) == 0 ? "=" : "+") : "");
        group += (group.empty() ? "" : " ") + n;
      }
      std::string spec = o.names.size() > 1 ? "'(" + group + ")'{" + names + "}" : names;
      s += "        " + spec + "'[" + zsh_escape(o.description) + "]" + action + "' \\\n";
    }
    if (!t.first_positional.empty()) s += "        '1:action:(" + t.first_positional + ")' \\\n";
    if (t.rest == "@profile")
      s += "        '*:profile:(${(f)\"$(sattn profile list -q 2>/dev/null)\"})'\n";
    else
      s += t.takes_files ? "        '*:op file:_files'\n" : "        \n";
    s += "      ;;\n";
  }
  s += "  esac\n}\n"
       "_sattn() {\n"
       "  local -a tools\n"
       "  tools=(\n";
  for (const auto& t : tools) s += "    '" + t.name + ":" + zsh_escape(t.summary) + "'\n";
  s += "  )\n"
       "  if (( CURRENT == 2 )); then\n"
       "    _describe 'sattn tool' tools\n"
       "    _arguments '--help[show help]' '--version[show version]'\n"
       "    return\n"
       "  fi\n"
       "  local tool=$words[2]\n"
       "  shift words; (( CURRENT-- ))\n"
       "  case $tool in\n"
       "    help) _describe 'sattn tool' tools ;;\n"
       "    *) _sattn_tool $tool ;;\n"
       "  esac\n"
       "}\n";
  s += "# sattn-opt (built with MLIR): its passes, pipelines and main mlir-opt options.\n"
       "_sattn_opt() {\n"
       "  _arguments -s \\\n";
  for (const OptFlag& f : kSattnOptFlags) {
    const std::string name(f.name);
    const std::string desc = "[" + zsh_escape(std::string(f.description)) + "]";
    if (name == "-o")
      s += "    '-o" + desc + ":file:_files' \\\n";
    else if (f.takes_value)
      s += "    '" + name + "=" + desc + ":value: ' \\\n";
    else if (name.rfind("-sattn-", 0) == 0)
      s += "    '" + name + "=-" + desc + ":pass options:(" + std::string(kSattnOptPassOptions) + ")' \\\n";
    else
      s += "    '" + name + desc + "' \\\n";
  }
  s += "    '*:MLIR file:_files'\n"
       "}\n"
       "case $service in\n"
       "  sattn-opt) _sattn_opt \"$@\" ;;\n"
       "  sattn-*) _sattn_tool ${service#sattn-} ;;\n"
       "  *) _sattn \"$@\" ;;\n"
       "esac\n";
  return s;
}

// The fish lines of one tool's options, for `complete -c COMMAND` under condition `cond` ("" = none).
std::string fish_tool_lines(const ToolInfo& t, const std::string& command, const std::string& cond) {
  const std::string head = "complete -c " + command + (cond.empty() ? "" : " -n " + cond);
  std::string s;
  if (!t.first_positional.empty())
    s += head + (cond.empty() ? " -n '__fish_is_first_arg'" : "") + " -a " + single_quoted(t.first_positional) + "\n";
  if (t.rest == "@profile") s += head + " -a '(sattn profile list -q 2>/dev/null)'\n";
  else if (t.takes_files) s += head + " -F\n";
  for (const auto& o : t.options) {
    std::string line = head;
    for (const auto& n : o.names) line += n.rfind("--", 0) == 0 ? " -l " + n.substr(2) : " -s " + n.substr(1);
    if (o.takes_value) {
      if (o.values == "@dir") line += " -x -a '(__fish_complete_directories)'";
      else if (o.values == "@profile") line += " -x -a '(sattn profile list -q 2>/dev/null)'";
      else if (o.values == "@file") line += " -r -F";
      else if (o.values.empty()) line += " -x";
      else if (o.list) line += " -x -a " + single_quoted("(__sattn_list " + o.values + ")");
      else line += " -x -a " + single_quoted(o.values);
    }
    line += " -d " + single_quoted(o.description);
    s += line + "\n";
  }
  return s;
}

std::string fish_script(const std::vector<ToolInfo>& tools) {
  std::string names;
  for (const auto& t : tools) names += t.name + " ";
  std::string s = "# fish completion for sattn and its tools (sattn-select, ...). Generated by `sattn completions fish`;\n"
                  "# do not edit. Installed under each command's name, for fish's on-demand loading.\n"
                  "# A comma-separated list (--specs bsr,sl): the items so far, then each choice.\n"
                  "function __sattn_list\n"
                  "    set -l head (string replace -r -- '^-[^=]*=' '' (commandline -ct) | string match -r -- '.*,')\n"
                  "    for v in $argv\n"
                  "        echo $head$v\n"
                  "    end\n"
                  "end\n"
                  "complete -c sattn -f\n"
                  "complete -c sattn -n __fish_use_subcommand -l help -d 'Show help'\n"
                  "complete -c sattn -n __fish_use_subcommand -l version -d 'Show version'\n"
                  "complete -c sattn -n __fish_use_subcommand -a help -d 'Show a tool\\'s help'\n"
                  "complete -c sattn -n '__fish_seen_subcommand_from help' -a '" + names + "'\n";
  for (const auto& t : tools) {
    s += "complete -c sattn -n __fish_use_subcommand -a " + t.name + " -d " + single_quoted(t.summary) + "\n";
    s += fish_tool_lines(t, "sattn", "'__fish_seen_subcommand_from " + t.name + "'");
  }
  for (const std::string& name : standalone_tools())
    for (const auto& t : tools)
      if (t.name == name) {
        s += "# sattn-" + name + ": the options of sattn " + name + ".\n";
        if (!t.takes_files) s += "complete -c sattn-" + name + " -f\n";  // no file arguments
        s += fish_tool_lines(t, "sattn-" + name, "");
      }
  s += "# sattn-opt (built with MLIR): its passes, pipelines and main mlir-opt options.\n"
       "complete -c sattn-opt -F\n";
  for (const OptFlag& f : kSattnOptFlags) {
    const std::string name(f.name);
    std::string line = "complete -c sattn-opt";
    line += name.rfind("--", 0) == 0 ? " -l " + name.substr(2)
            : name.size() == 2       ? " -s " + name.substr(1)
                                     : " -o " + name.substr(1);  // fish's old-style -long
    if (name == "-o") line += " -r -F";
    else if (f.takes_value) line += " -x";
    s += line + " -d " + single_quoted(std::string(f.description)) + "\n";
  }
  return s;
}

}  // namespace

std::string completion_script(const std::string& shell) {
  const auto tools = collect_tools();
  if (shell == "bash") return bash_script(tools);
  if (shell == "zsh") return zsh_script(tools);
  if (shell == "fish") return fish_script(tools);
  throw Error(ExitCode::usage, "unknown shell '" + shell + "' (bash, zsh or fish)");
}

std::function<int()> configure_completions(CLI::App& app) {
  auto shell = std::make_shared<std::string>();
  app.add_option("shell", *shell, "Shell: bash, zsh or fish")->required();
  return [shell] {
    std::cout << completion_script(*shell);
    return 0;
  };
}

}  // namespace sattn
