package project

import "github.com/berth-dev/berth/runtime"

// DisplayName is how logs and the UI name a container: "web-1" (service and
// number), or its container_name when it has one.
func DisplayName(c *runtime.Container) string {
	svc, num := c.Spec.Labels[LabelService], c.Spec.Labels[LabelNumber]
	if svc == "" || c.Spec.Name != c.Spec.Labels[LabelProject]+"-"+svc+"-"+num {
		return c.Spec.Name
	}
	return svc + "-" + num
}
