// `sattn profile list | show NAME | validate FILE...`: find, print and check profiles
// (sattn-profile(5)).
#include <CLI/CLI.hpp>
#include <optional>

#include "cli/cli.hpp"
#include "cli/output.hpp"
#include "sattn/error.hpp"
#include "support/io.hpp"
#include "support/process.hpp"
#include "formats/profile.hpp"
#include "support/text_table.hpp"

namespace sattn {

namespace {

struct ProfileCli {
  OutputFlags out{"-", "text"};  // -o, --format, -q
  std::string action;
  std::vector<std::string> names;
};

int profile_action(const ProfileCli& o) {
  o.out.check();
  if (o.action == "list") {
    if (!o.names.empty()) throw Error(ExitCode::usage, "profile list takes no arguments");
    const auto entries = list_profiles();
    if (o.out.quiet) {  // names only, for shell completion
      std::string names;
      for (const auto& e : entries)
        if (!e.shadowed) names += e.name + "\n";
      write_atomic(o.out.output, names);
    } else if (o.out.json()) {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& e : entries)
        j.push_back({{"name", e.name}, {"path", e.path}, {"description", e.description}, {"shadowed", e.shadowed}});
      write_atomic(o.out.output, j.dump(2) + "\n");
    } else {
      TextTable t({"name", "description", "path"});
      for (const auto& e : entries) t.add({e.name + (e.shadowed ? " (shadowed)" : ""), e.description, e.path});
      write_atomic(o.out.output, t.str());
    }
    return 0;
  }
  if (o.action == "show") {
    if (o.names.size() != 1) throw Error(ExitCode::usage, "profile show takes one NAME or PATH");
    const Profile p = load_profile(o.names[0]);
    const nlohmann::json merged = p.merged();
    if (o.out.json()) {
      write_atomic(o.out.output, merged.dump(2) + "\n");
    } else {
      // YAML-ish text: the merged profile, readable and diffable.
      std::string text = "# profile " + o.names[0] + " (" + p.chain.back().path + ")\n";
      for (const ProfileFile& f : p.chain) text += "# from " + f.path + "\n";
      text += json_to_yaml_text(merged);
      write_atomic(o.out.output, text);
    }
    return 0;
  }
  if (o.action == "validate") {
    if (o.names.empty()) throw Error(ExitCode::usage, "profile validate takes one or more FILEs or NAMEs");
    std::string text;
    for (const std::string& n : o.names) {
      // '-': standard input (`sattn profile show X | sattn profile validate -`), read into a
      // temporary file that messages call <stdin>.
      std::optional<TempDir> tmp;
      std::string path = n;
      if (n == "-") {
        tmp.emplace("sattn-profile");
        path = tmp->path() + "/stdin.yaml";
        write_atomic(path, read_text("-"));
      }
      std::optional<Profile> loaded;
      try {
        loaded = load_profile(path);
      } catch (const Error& e) {
        if (!tmp) throw;
        SourceLoc loc = e.loc();
        if (loc.file == path) loc.file = "<stdin>";
        std::string message = e.message();
        for (size_t at; (at = message.find(path)) != std::string::npos;) message.replace(at, path.size(), "<stdin>");
        throw Error(e.kind(), message, loc);
      }
      const Profile& p = *loaded;
      text += (tmp ? std::string("<stdin>") : p.chain.back().path) + ": ok (sattn.profile/v1";
      if (p.chain.size() > 1) text += ", inherits " + std::to_string(p.chain.size() - 1) + " level(s)";
      text += ")\n";
    }
    if (!o.out.quiet) write_atomic(o.out.output, text);
    return 0;
  }
  throw Error(ExitCode::usage, "unknown action '" + o.action + "' (list, show NAME, validate FILE...)");
}

}  // namespace

std::function<int()> configure_profile(CLI::App& app) {
  auto o = std::make_shared<ProfileCli>();
  app.add_option("action", o->action, "list, show NAME|PATH, or validate FILE...")->required();
  app.add_option("names", o->names, "Profile names or paths (show: one; validate: one or more)");
  o->out.add_to(app, "Write to FILE, atomically",
                "text or json",
                "list: names only (for completion); validate: print nothing, only the exit status");
  app.footer("Profiles are looked up as NAME.yaml in ./profiles, $XDG_CONFIG_HOME/sattn/profiles, then the installed\n"
             "share/sattn/profiles. Exit status: 0 ok, 2 usage or unknown profile, 3 invalid profile. See man sattn-profile.");
  return [o] { return profile_action(*o); };
}

}  // namespace sattn
