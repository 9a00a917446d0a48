// A plan as its sattn.plan/v1 JSON document (the tools' and the artifacts' form of a Plan).
#pragma once
#include <nlohmann/json.hpp>

#include "sattn/select.hpp"

namespace sattn {

nlohmann::json plan_to_json(const Plan&);

}  // namespace sattn
